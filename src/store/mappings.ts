/** The mappings aggregate: table `mappings`. A mapping names an identity (identities.ts). */
import type { Kysely, Selectable } from 'kysely';
import { type KeyOrder, readPage } from '../shared/paging.js';
import { fromFlag, fromMs, toFlag, toMs } from './columns.js';
import { Aggregate, changedAny, Unchanged } from './database.js';
import { requireLiveIdentity } from './identities.js';
import { enforceQuota } from './quota.js';
import type { Database, MappingsTable } from './tables.js';
import type { Mapping, MappingStore, MatchKind, Page, PageRequest, QuotaLimit } from './types.js';

/** A tenant's mappings: oldest first. */
const MAPPING_ORDER: KeyOrder<Selectable<MappingsTable>> = {
  list: 'mappings',
  columns: ['created_at', 'id'],
  direction: 'asc',
  types: ['integer', 'string'],
};

/** {@link MappingStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyMappingStore extends Aggregate implements MappingStore {
  /**
   * @throws AppError `not_found` when the tenant or the identity (in this tenant) does not exist or
   *   the identity is deleted (checked in the write transaction, see softDeleteIdentity),
   *   `bad_request` when the id is taken, `quota_exceeded` when `quota.max` mappings (not deleted)
   *   exist (counted in the write transaction).
   */
  async createMapping(tenantId: string, mapping: Mapping, quota?: QuotaLimit): Promise<void> {
    await this.database.write(async (trx) => {
      await requireLiveIdentity(trx, tenantId, mapping.identityId);
      const live = trx.selectFrom('mappings').where('tenant_id', '=', tenantId).where('deleted', '=', 0);
      await enforceQuota(live, quota);
      await trx
        .insertInto('mappings')
        .values({
          ...toMappingFields(mapping),
          id: mapping.id,
          tenant_id: tenantId,
          created_at: toMs(mapping.createdAt),
        })
        .execute();
    });
  }

  async getMapping(tenantId: string, mappingId: string): Promise<Mapping | undefined> {
    return this.database.first(
      this.database.ofTenant('mappings', tenantId).where('id', '=', mappingId),
      toMapping,
    );
  }

  /**
   * Ordered by createdAt then id; soft-deleted ones only with `includeDeleted` (a cursor belongs to
   * the one or the other list). @throws AppError `invalid_cursor`
   */
  async listMappings(
    tenantId: string,
    request: PageRequest,
    options?: { includeDeleted?: boolean },
  ): Promise<Page<Mapping>> {
    const includeDeleted = options?.includeDeleted === true;
    let query = this.database.ofTenant('mappings', tenantId);
    if (!includeDeleted) query = query.where('deleted', '=', 0);
    const filters = [tenantId, includeDeleted ? 'all' : 'live'];
    return readPage(this.database, query, MAPPING_ORDER, filters, request, toMapping);
  }

  /**
   * Overwrites every field but `id`, `tenantId` and `createdAt`; a soft delete is an update with
   * `deleted: true`. Changes nothing for an unknown mapping or another tenant's.
   * @throws AppError `not_found` when `identityId` names no identity of this tenant, or, for a
   *   mapping left enabled and not deleted, a deleted one (checked in the write transaction, see
   *   softDeleteIdentity).
   */
  async updateMapping(tenantId: string, mapping: Mapping): Promise<void> {
    await this.database.write(async (trx) => {
      const update = this.database.updateOfTenant(trx, 'mappings', tenantId).where('id', '=', mapping.id);
      if (!(await changedAny(update.set(toMappingFields(mapping))))) throw new Unchanged(undefined);
      // After the update, so an unknown mapping stays a no-op; the throw rolls the update back.
      if (mapping.enabled && !mapping.deleted) {
        await requireLiveIdentity(
          trx,
          tenantId,
          mapping.identityId,
          'The identity of this mapping does not exist or was deleted; name another one or disable the mapping.',
        );
      }
    });
  }
}

/**
 * Enabled, not deleted mappings of `tenantId` that name `identityId`: for the identities aggregate,
 * inside its write transaction (see softDeleteIdentity).
 */
export async function countActiveMappings(
  db: Kysely<Database>,
  tenantId: string,
  identityId: string,
): Promise<number> {
  const row = await db
    .selectFrom('mappings')
    .select((eb) => eb.fn.countAll().as('count'))
    .where('tenant_id', '=', tenantId)
    .where('identity_id', '=', identityId)
    .where('enabled', '=', 1)
    .where('deleted', '=', 0)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** The columns an update may change. */
function toMappingFields(m: Mapping) {
  return {
    name: m.name,
    service: m.service,
    url: m.url,
    match_kind: m.match,
    identity_id: m.identityId,
    enabled: toFlag(m.enabled),
    deleted: toFlag(m.deleted),
    trust_anchors_pem: m.trustAnchorsPem ?? null,
    updated_at: toMs(m.updatedAt),
  } satisfies Partial<MappingsTable>;
}

function toMapping(row: Selectable<MappingsTable>): Mapping {
  const mapping: Mapping = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    service: row.service,
    url: row.url,
    match: row.match_kind as MatchKind,
    identityId: row.identity_id,
    enabled: fromFlag(row.enabled),
    deleted: fromFlag(row.deleted),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.trust_anchors_pem !== null) mapping.trustAnchorsPem = row.trust_anchors_pem;
  return mapping;
}
