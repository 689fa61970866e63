import { type Kysely, type Migration, sql } from 'kysely';
import { columnExists } from './0003-lifecycle.js';
import type { StoreDialect } from './index.js';

/**
 * Platform outbound CA and inbound controls (issue 16, items 1 and 7): the operator's per-tenant switch for the edge, and CSRs
 * waiting for the operator's approval (`TWOWAY_CSR_APPROVAL=manual`).
 *
 * - `tenants.edge_enabled`: 0 or 1 once the operator switched the tenant; null while it follows
 *   `TWOWAY_EDGE_DEFAULT_ENABLED` (so every tenant created before this migration keeps the edge).
 * - `certificate_signing_requests`: one row per CSR submitted under manual approval, `pending` until
 *   the operator approves (the certificate is issued then, `client_certificate_id` names it) or
 *   rejects it. The CSR is public material (a public key and a self-signature).
 *
 * Re-runnable like 0003: the column is added only when missing, the table and index are `if not exists`.
 */
export function edgeControls(dialect: StoreDialect): Migration {
  const binary = dialect === 'sqlite' ? 'blob' : 'bytea';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // The platform outbound CA (issue 16, item 1): a root and issuing CA of their own for the
      // platform's identities, never the CA that signs tenants' CSRs; same shape as platform_ca.
      await db.schema
        .createTable('platform_outbound_ca')
        .ifNotExists()
        .addColumn('role', 'text', (c) => c.primaryKey().check(sql`role in ('root', 'issuing')`))
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('ciphertext', binary, (c) => c.notNull())
        .addColumn('iv', binary, (c) => c.notNull())
        .addColumn('wrapped_dek', binary, (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      if (!(await columnExists(db, dialect, 'tenants', 'edge_enabled'))) {
        await db.schema.alterTable('tenants').addColumn('edge_enabled', 'integer').execute();
      }
      await db.schema
        .createTable('certificate_signing_requests')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('csr_pem', 'text', (c) => c.notNull())
        .addColumn('validity_days', 'integer')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('client_certificate_id', 'text')
        .addColumn('reason', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('decided_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('certificate_signing_requests_tenant_idx')
        .ifNotExists()
        .on('certificate_signing_requests')
        .columns(['tenant_id', 'created_at'])
        .execute();
    },
  };
}
