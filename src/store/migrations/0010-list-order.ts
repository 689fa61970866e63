import type { Kysely, Migration } from 'kysely';

/**
 * Indexes for keyset paging (shared/paging.ts) and quota counts. Every list reads `where tenant_id =
 * ? and (created_at, id) > (?, ?) order by created_at, id limit n`; an index on exactly that order
 * makes a page cost the same at any depth. The issued-per-day quota counts a tenant's issued
 * certificates since an instant. Every index is `if not exists`, so a cut-short run is run again.
 */
const INDEXES: { name: string; table: string; columns: string[] }[] = [
  { name: 'tenants_created_at_id_idx', table: 'tenants', columns: ['created_at', 'id'] },
  {
    name: 'identities_tenant_id_created_at_id_idx',
    table: 'identities',
    columns: ['tenant_id', 'created_at', 'id'],
  },
  {
    name: 'mappings_tenant_id_created_at_id_idx',
    table: 'mappings',
    columns: ['tenant_id', 'created_at', 'id'],
  },
  {
    name: 'client_certificates_tenant_id_created_at_id_idx',
    table: 'client_certificates',
    columns: ['tenant_id', 'created_at', 'id'],
  },
  {
    name: 'client_certificates_tenant_id_source_created_at_idx',
    table: 'client_certificates',
    columns: ['tenant_id', 'source', 'created_at'],
  },
  { name: 'alerts_tenant_id_not_after_idx', table: 'alerts', columns: ['tenant_id', 'not_after'] },
  {
    name: 'notifications_tenant_id_created_at_id_idx',
    table: 'notifications',
    columns: ['tenant_id', 'created_at', 'id'],
  },
];

export function listOrder(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      for (const index of INDEXES) {
        await db.schema
          .createIndex(index.name)
          .ifNotExists()
          .on(index.table)
          .columns(index.columns)
          .execute();
      }
    },
  };
}
