import type { Static } from '@sinclair/typebox';
import { readTrustAnchors } from '../certificates/index.js';
import { AppError, toAppError } from '../errors/app-error.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { type Collection, everyItem, viewPage } from '../shared/paging.js';
import { quotaLimit } from '../shared/quotas.js';
import type { Mapping, MappingStore, MatchKind, PageRequest } from '../store/index.js';
import type { MappingSchema } from './schemas.js';

/** A mapping as the API shows it (API.md "Mapping"). */
export type MappingView = Static<typeof MappingSchema>;

export interface MappingInput {
  name: string;
  service: string;
  url?: string;
  match?: MatchKind;
  identityId: string;
  enabled?: boolean;
  trustAnchorsPem?: string;
}

export type MappingPatch = Partial<Omit<MappingInput, 'service' | 'trustAnchorsPem'>> & {
  trustAnchorsPem?: string | null;
};

export interface MappingServiceDeps {
  store: MappingStore;
  /** Whether an identity exists in the tenant (through the identities service). */
  identityExists(tenantId: string, identityId: string): Promise<boolean>;
  clock: Clock;
  changes: ChangeBus;
  /** Most live (not deleted) mappings per tenant (TWOWAY_QUOTA_MAPPINGS); no quota when absent. */
  quota?: number;
}

/**
 * Mappings: (tenant, service, URL match) → identity. URLs must be absolute `https:` URLs without
 * credentials or fragment (for `any`, the URL is optional and not used for matching). A mapping may
 * only name an identity of its own tenant.
 */
export class MappingService {
  readonly #deps: MappingServiceDeps;

  constructor(deps: MappingServiceDeps) {
    this.#deps = deps;
  }

  /**
   * @throws AppError `mapping_url_invalid`, `invalid_trust_anchors`, `trust_anchors_too_large`,
   *   `not_found` (identity), `quota_exceeded` (the tenant has its quota of live mappings; counted in
   *   the write transaction, nothing is stored)
   */
  async create(tenantId: string, input: MappingInput): Promise<MappingView> {
    const match = input.match ?? 'prefix';
    const url = normaliseMappingUrl(input.url, match);
    await this.#requireIdentity(tenantId, input.identityId);
    const now = this.#deps.clock.now();
    const mapping: Mapping = {
      id: newId('map'),
      tenantId,
      name: input.name,
      service: input.service,
      url,
      match,
      identityId: input.identityId,
      enabled: input.enabled ?? true,
      deleted: false,
      ...(input.trustAnchorsPem ? { trustAnchorsPem: checkTrustAnchors(input.trustAnchorsPem) } : {}),
      createdAt: now,
      updatedAt: now,
    };
    await this.#deps.store.createMapping(
      tenantId,
      mapping,
      quotaLimit(this.#deps.quota, 'mappings in this tenant', 'TWOWAY_QUOTA_MAPPINGS', 'delete one first.'),
    );
    await this.#announce(mapping);
    return mappingView(mapping);
  }

  /** @throws AppError `not_found`, and the codes of {@link create} but `quota_exceeded` */
  async update(tenantId: string, mappingId: string, patch: MappingPatch): Promise<MappingView> {
    const current = await this.#require(tenantId, mappingId);
    // A deleted mapping stays readable for the record, but it cannot come back to life by a PATCH.
    if (current.deleted) throw new AppError('not_found', 'This mapping was deleted.');
    const match = patch.match ?? current.match;
    const url = normaliseMappingUrl(patch.url ?? (match === current.match ? current.url : undefined), match);
    if (patch.identityId !== undefined) await this.#requireIdentity(tenantId, patch.identityId);
    const next: Mapping = {
      ...current,
      name: patch.name ?? current.name,
      url,
      match,
      identityId: patch.identityId ?? current.identityId,
      enabled: patch.enabled ?? current.enabled,
      updatedAt: this.#deps.clock.now(),
    };
    if (patch.trustAnchorsPem === null || patch.trustAnchorsPem === '') delete next.trustAnchorsPem;
    else if (patch.trustAnchorsPem !== undefined)
      next.trustAnchorsPem = checkTrustAnchors(patch.trustAnchorsPem);
    await this.#deps.store.updateMapping(tenantId, next);
    await this.#announce(next);
    return mappingView(next);
  }

  /** Soft delete: the mapping stays visible with `deleted: true` and no longer matches. */
  async remove(tenantId: string, mappingId: string): Promise<MappingView> {
    const current = await this.#require(tenantId, mappingId);
    const next: Mapping = { ...current, deleted: true, enabled: false, updatedAt: this.#deps.clock.now() };
    await this.#deps.store.updateMapping(tenantId, next);
    await this.#announce(next);
    return mappingView(next);
  }

  async get(tenantId: string, mappingId: string): Promise<MappingView> {
    return mappingView(await this.#require(tenantId, mappingId));
  }

  /**
   * One page of the tenant's mappings, oldest first (deleted ones too with `includeDeleted`); the
   * page ends early once it is about PAGE_MAX_BYTES (trust anchors are up to 64 KiB each).
   * @throws AppError `invalid_cursor`
   */
  async list(
    tenantId: string,
    request: PageRequest,
    includeDeleted = false,
  ): Promise<Collection<MappingView>> {
    const page = await this.#deps.store.listMappings(tenantId, request, { includeDeleted });
    return viewPage(page, (mappings) => mappings.map(mappingView));
  }

  /** Enabled, not deleted mappings with their trust anchors, for the runtime index. */
  async listForRuntime(tenantId: string): Promise<Mapping[]> {
    const live = await everyItem((request) => this.#deps.store.listMappings(tenantId, request));
    return live.filter((m) => m.enabled && !m.deleted);
  }

  async #require(tenantId: string, mappingId: string): Promise<Mapping> {
    const mapping = await this.#deps.store.getMapping(tenantId, mappingId);
    if (!mapping) throw new AppError('not_found', 'No such mapping.');
    return mapping;
  }

  async #requireIdentity(tenantId: string, identityId: string): Promise<void> {
    if (!(await this.#deps.identityExists(tenantId, identityId))) {
      throw new AppError('not_found', 'No such identity in this tenant.');
    }
  }

  #announce(mapping: Mapping): Promise<void> {
    return this.#deps.changes.emit({ tenantId: mapping.tenantId, kind: 'mapping', id: mapping.id });
  }
}

/**
 * Checks and normalises a mapping URL (WHATWG URL serialisation: lower-case host, default port
 * dropped, dot segments resolved) so that matching compares like with like.
 * @throws AppError `mapping_url_invalid`
 */
export function normaliseMappingUrl(raw: string | undefined, match: MatchKind): string {
  if (match === 'any' && (raw === undefined || raw === '' || raw === '*')) return '*';
  if (!raw) throw new AppError('mapping_url_invalid', 'A url is required for exact and prefix mappings.');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('mapping_url_invalid', 'The url is not an absolute URL.');
  }
  if (url.protocol !== 'https:') throw new AppError('mapping_url_invalid', 'Only https URLs can be mapped.');
  if (url.username || url.password)
    throw new AppError('mapping_url_invalid', 'The url must not hold credentials.');
  if (url.hash) throw new AppError('mapping_url_invalid', 'The url must not hold a fragment.');
  if (match === 'prefix' && url.search) {
    throw new AppError('mapping_url_invalid', 'A prefix mapping matches on the path; remove the query.');
  }
  return url.href;
}

function checkTrustAnchors(pem: string): string {
  try {
    readTrustAnchors(pem);
    return pem.trim();
  } catch (err) {
    throw toAppError(err);
  }
}

export function mappingView(m: Mapping): MappingView {
  return {
    id: m.id,
    tenant: m.tenantId,
    name: m.name,
    service: m.service,
    url: m.url,
    match: m.match,
    identityId: m.identityId,
    enabled: m.enabled,
    deleted: m.deleted,
    ...(m.trustAnchorsPem !== undefined ? { trustAnchorsPem: m.trustAnchorsPem } : {}),
    createdAt: m.createdAt.toISOString(),
    updatedAt: m.updatedAt.toISOString(),
  };
}
