import type { Kysely, Migration } from 'kysely';

/**
 * Indexes for keyset paging (shared/paging.ts) and quota counts. Every list reads `where tenant_id =
 * ? and (created_at, id) > (?, ?) order by created_at, id limit n`; an index on exactly that order
 * makes a page cost the same at any depth. The issued-per-day quota counts a tenant's issued
 * certificates since an instant. Every index is `if not exists`, so a cut-short run is run again.
 */
const INDEXES: [table: string, ...columns: string[]][] = [
  ['tenants', 'created_at', 'id'],
  ['identities', 'tenant_id', 'created_at', 'id'],
  ['mappings', 'tenant_id', 'created_at', 'id'],
  ['client_certificates', 'tenant_id', 'created_at', 'id'],
  ['client_certificates', 'tenant_id', 'source', 'created_at'],
  ['alerts', 'tenant_id', 'not_after'],
  ['notifications', 'tenant_id', 'created_at', 'id'],
];

export function listOrder(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const [table, ...columns] of INDEXES) {
        const name = `${table}_${columns.join('_')}_idx`;
        await db.schema.createIndex(name).ifNotExists().on(table).columns(columns).execute();
      }
    },
  };
}
