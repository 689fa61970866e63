/**
 * Where a request through a connection may go: its `baseUrl` or any path under it, by the prefix
 * rules of mappings (mappings/match.ts, shared/paths.ts), so `..`, `%2F..` and `..;/` cannot leave it.
 */
import { AppError } from '../errors/app-error.js';
import { parseForwardUrl } from '../net/address-guard.js';
import { pathWithin } from '../shared/paths.js';

/** A connection's base URL, parsed once for {@link connectionTarget}. */
export interface CompiledBase {
  /** The base URL as stored (WHATWG serialisation). */
  href: string;
  /** `href` without trailing slashes, plus one: what a relative forward URL is appended to. */
  prefix: string;
  origin: string;
  /** The path without trailing slashes (`''` for the root, which covers every path). */
  path: string;
}

/** A URL scheme at the start of a `Twoway-Forward-Url` value (RFC 3986 §3.1) makes it absolute. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Checks and normalises a connection's base URL: an absolute `https:` URL with a host, without
 * credentials, query or fragment (WHATWG serialisation: lower-case host, default port dropped, dot
 * segments resolved). An IP-literal host in a loopback, private, link-local or metadata range is
 * refused unless `allowPrivate` (names are checked after DNS, on every connection).
 * @throws AppError `connection_invalid` (422), `forward_destination_blocked` (403)
 */
export function normaliseBaseUrl(raw: string, allowPrivate: boolean): string {
  const url = checkedHttpsUrl(raw, 'baseUrl', allowPrivate);
  if (url.search !== '' || url.hash !== '') {
    throw new AppError('connection_invalid', 'The baseUrl must not have a query or a fragment.');
  }
  return url.href;
}

/**
 * Parses `raw` as an absolute https URL without credentials (the forward URL rules of
 * net/address-guard.ts), naming the field `field` in the detail of a refusal.
 * @throws AppError `connection_invalid` (422), `forward_destination_blocked` (403)
 */
export function checkedHttpsUrl(raw: string, field: string, allowPrivate: boolean): URL {
  try {
    return parseForwardUrl(raw, allowPrivate);
  } catch (err) {
    if (err instanceof AppError && err.code === 'forward_destination_blocked') {
      throw new AppError('forward_destination_blocked', `The ${field} points to a blocked address.`);
    }
    throw new AppError(
      'connection_invalid',
      `The ${field} must be an absolute https URL with a host and without credentials.`,
    );
  }
}

/** Prepares a stored base URL for {@link connectionTarget}. */
export function compileBase(baseUrl: string): CompiledBase {
  const url = new URL(baseUrl);
  return {
    href: url.href,
    prefix: `${url.href.replace(/\/+$/, '')}/`,
    origin: url.origin,
    path: url.pathname.replace(/\/+$/, ''),
  };
}

/**
 * The URL a forward through a connection goes to, from its `Twoway-Forward-Url` value:
 * - absent or empty: the base URL itself;
 * - absolute (it starts with a scheme): it must lie under the base URL, same origin and a path on or
 *   below the base path on a `/` boundary, also as a lenient server reads it (`%2F`, `%5C`, `%2E`,
 *   `;parameters`; see shared/paths.ts);
 * - relative: joined to the base URL as a path below it (`orders/7?x=1` and `/orders/7?x=1` both
 *   give `<base>/orders/7?x=1`, as HTTP client libraries join a base URL), then checked as above,
 *   so `../admin`, `..%2Fadmin` and `..;/admin` are refused.
 * Every result also passes the forward URL checks (https, no credentials, blocked IP literals).
 * @throws AppError `forward_url_invalid` (400) when the URL is malformed or not under the base URL;
 *   `forward_destination_blocked` (403) for a blocked IP literal unless `allowPrivate`.
 */
export function connectionTarget(base: CompiledBase, value: string | undefined, allowPrivate: boolean): URL {
  let raw: string;
  if (value === undefined || value === '') raw = base.href;
  else if (SCHEME.test(value)) raw = value;
  else raw = base.prefix + (value.charCodeAt(0) === 47 /* / */ ? value.replace(/^\/+/, '') : value);
  const url = parseForwardUrl(raw, allowPrivate);
  if (url.origin !== base.origin || !pathWithin(base.path, url.pathname)) {
    throw new AppError('forward_url_invalid', "The forward URL is not under the connection's baseUrl.");
  }
  return url;
}
