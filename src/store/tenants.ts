/** The tenants aggregate: tables `tenants` and `api_keys`. */
import type { Selectable, Transaction } from 'kysely';
import { type KeyOrder, readPage } from '../shared/paging.js';
import { fromMs, optionalMs, toMs } from './columns.js';
import { Aggregate, changedAny, Unchanged } from './database.js';
import { parseNames, requireRoles } from './people.js';
import type { ApiKeysTable, Database, TenantsTable } from './tables.js';
import type { ApiKey, Page, PageRequest, Tenant, TenantStore } from './types.js';

/** The operator's list of tenants: oldest first. */
const TENANT_ORDER: KeyOrder<Selectable<TenantsTable>> = {
  list: 'tenants',
  columns: ['created_at', 'id'],
  direction: 'asc',
  types: ['integer', 'string'],
};

/** True when an unrevoked API key of the tenant holds `role` (for people.ts's deleteRole). */
export async function keysHoldingRole(
  trx: Transaction<Database>,
  tenantId: string,
  role: string,
): Promise<boolean> {
  const keys = await trx
    .selectFrom('api_keys')
    .select('roles_json')
    .where('tenant_id', '=', tenantId)
    .where('revoked_at', 'is', null)
    .execute();
  return keys.some((k) => parseNames(k.roles_json).includes(role));
}

/** {@link TenantStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyTenantStore extends Aggregate implements TenantStore {
  /** @throws AppError `tenant_exists` when the id is taken. */
  async createTenant(tenant: Tenant): Promise<void> {
    await this.database.write((trx) =>
      trx
        .insertInto('tenants')
        .values({ id: tenant.id, name: tenant.name, created_at: toMs(tenant.createdAt) })
        .execute(),
    );
  }

  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    const { db } = this.database;
    return this.database.first(db.selectFrom('tenants').selectAll().where('id', '=', tenantId), toTenant);
  }

  /** Ordered by createdAt then id. @throws AppError `invalid_cursor` */
  async listTenants(request: PageRequest): Promise<Page<Tenant>> {
    const tenants = this.database.db.selectFrom('tenants').selectAll();
    return readPage(this.database, tenants, TENANT_ORDER, [], request, toTenant);
  }

  /**
   * @throws AppError `not_found` when the tenant does not exist, `unknown_role` for a role that is
   *   neither built-in nor the tenant's own, `bad_request` when the id or token hash is already stored.
   */
  async createApiKey(tenantId: string, key: ApiKey): Promise<void> {
    await this.database.write(async (trx) => {
      await requireRoles(trx, tenantId, key.roles);
      await trx
        .insertInto('api_keys')
        .values({
          id: key.id,
          tenant_id: tenantId,
          name: key.name,
          roles_json: JSON.stringify(key.roles),
          token_sha256: key.tokenSha256,
          created_at: toMs(key.createdAt),
          revoked_at: optionalMs(key.revokedAt),
          last_used_at: optionalMs(key.lastUsedAt),
        })
        .execute();
    });
  }

  async getApiKey(tenantId: string, keyId: string): Promise<ApiKey | undefined> {
    const keys = this.database.ofTenant('api_keys', tenantId).where('revoked_at', 'is', null);
    return this.database.first(keys.where('id', '=', keyId), toApiKey);
  }

  async listApiKeys(tenantId: string, page: { afterId?: string; limit: number }): Promise<ApiKey[]> {
    let query = this.database.ofTenant('api_keys', tenantId).where('revoked_at', 'is', null);
    if (page.afterId !== undefined) query = query.where('id', '>', page.afterId);
    return this.database.all(query.orderBy('id').limit(page.limit), toApiKey);
  }

  /** Bookkeeping: does not bump the revision, so other processes keep their caches. */
  async touchApiKey(tenantId: string, keyId: string, at: Date): Promise<void> {
    await this.database.append((trx) =>
      trx
        .updateTable('api_keys')
        .set({ last_used_at: toMs(at) })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', keyId)
        .execute(),
    );
  }

  /** Revoking twice keeps the first `revokedAt` and still returns true. */
  async revokeApiKey(tenantId: string, keyId: string, at: Date): Promise<boolean> {
    const revokedMs = toMs(at);
    return this.database.write(async (trx) => {
      const keys = this.database.updateOfTenant(trx, 'api_keys', tenantId).where('id', '=', keyId);
      if (await changedAny(keys.where('revoked_at', 'is', null).set({ revoked_at: revokedMs }))) return true;
      const existing = await trx
        .selectFrom('api_keys')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', keyId)
        .executeTakeFirst();
      throw new Unchanged(existing !== undefined);
    });
  }

  async findApiKeyByHash(tokenSha256: string): Promise<ApiKey | undefined> {
    const keys = this.database.db.selectFrom('api_keys').selectAll();
    return this.database.first(
      keys.where('token_sha256', '=', tokenSha256).where('revoked_at', 'is', null),
      toApiKey,
    );
  }
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, createdAt: fromMs(row.created_at) };
}

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  const key: ApiKey = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    roles: parseNames(row.roles_json),
    tokenSha256: row.token_sha256,
    createdAt: fromMs(row.created_at),
  };
  if (row.revoked_at !== null) key.revokedAt = fromMs(row.revoked_at);
  if (row.last_used_at !== null) key.lastUsedAt = fromMs(row.last_used_at);
  return key;
}
