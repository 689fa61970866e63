import { pathWithin } from '../shared/paths.js';
import type { Mapping } from '../store/index.js';

/** A mapping prepared for matching: URLs parsed once (WHATWG URL normalisation). */
export interface CompiledMapping {
  mapping: Mapping;
  /** `exact`: origin + path + query of the mapping URL. */
  href?: string;
  /** `prefix`: origin and path prefix without a trailing slash (`''` for the root). */
  origin?: string;
  path?: string;
}

/** The part of a URL an exact mapping compares: origin, path and query, no fragment. */
export function exactKey(url: URL): string {
  return `${url.origin}${url.pathname}${url.search}`;
}

/** Prepares a mapping for {@link matchMapping}. */
export function compileMapping(mapping: Mapping): CompiledMapping {
  if (mapping.match === 'any') return { mapping };
  const url = new URL(mapping.url);
  if (mapping.match === 'exact') return { mapping, href: exactKey(url) };
  return { mapping, origin: url.origin, path: url.pathname.replace(/\/+$/, '') };
}

/**
 * The most specific mapping of `service` that covers `url` (API.md "Mappings"): an exact match
 * wins, then the longest path prefix on a `/` boundary within the same origin, then `any`. A prefix
 * covers a path only when it also does once `%2F`, `%5C`, `%2E` and `;parameters` are read the way
 * lenient servers read them (shared/paths.ts): `/v1/..%2Fadmin` is not under `/v1`. Ties
 * go to the oldest mapping, so adding a mapping never silently changes an established route.
 * `candidates` must already be the enabled, not deleted mappings of one tenant.
 */
export function matchMapping(
  candidates: readonly CompiledMapping[],
  service: string,
  url: URL,
): Mapping | undefined {
  let best: CompiledMapping | undefined;
  let bestRank = -1;
  const key = exactKey(url);
  for (const c of candidates) {
    if (c.mapping.service !== service) continue;
    let rank = -1;
    if (c.href !== undefined) {
      if (c.href === key) rank = Number.MAX_SAFE_INTEGER;
    } else if (c.origin !== undefined && c.path !== undefined) {
      if (c.origin === url.origin && pathWithin(c.path, url.pathname)) rank = 1 + c.path.length;
    } else {
      rank = 0;
    }
    if (rank > bestRank || (rank === bestRank && best && c.mapping.createdAt < best.mapping.createdAt)) {
      if (rank >= 0) {
        best = c;
        bestRank = rank;
      }
    }
  }
  return best?.mapping;
}
