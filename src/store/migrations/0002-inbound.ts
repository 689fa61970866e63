import { type Kysely, type Migration, sql } from 'kysely';
import type { StoreDialect } from './index.js';

/**
 * Inbound mTLS: client certificates (uploaded or issued), the platform CA and its CRL. Every
 * statement is `if not exists`, as in 0001, so a migration cut short is simply run again.
 *
 * - `client_certificates.fingerprint_sha256` is unique among rows that are not deleted (a partial
 *   unique index, which SQLite and PostgreSQL both have): one fingerprint names one tenant, which is
 *   what lets the edge find the tenant from the certificate alone. A deleted certificate may be
 *   registered again.
 * - `revision` is the store revision of the row's last change, so that every process can ask for
 *   "rows changed since revision N" and keep its in-memory fingerprint index in step (index below).
 * - `platform_ca` holds the root and the issuing CA, each key sealed by the KMS (envelope
 *   encryption); one CA per deployment, shared by every replica through the database.
 * - `platform_crl` holds the one current CRL, regenerated in the transaction of each revocation.
 */
export function inbound(dialect: StoreDialect): Migration {
  const binary = dialect === 'sqlite' ? 'blob' : 'bytea';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('client_certificates')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
        .addColumn('serial_number', 'text', (c) => c.notNull())
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('summary_json', 'text', (c) => c.notNull())
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addColumn('revocation_reason', 'text')
        .addColumn('deleted_at', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('client_certificates_live_fingerprint_key')
        .ifNotExists()
        .unique()
        .on('client_certificates')
        .column('fingerprint_sha256')
        .where(sql.ref('deleted_at'), 'is', null)
        .execute();
      // Serves the tenant's listing (`where tenant_id = ? order by created_at`).
      await db.schema
        .createIndex('client_certificates_tenant_id_idx')
        .ifNotExists()
        .on('client_certificates')
        .columns(['tenant_id', 'created_at'])
        .execute();
      await db.schema
        .createIndex('client_certificates_revision_idx')
        .ifNotExists()
        .on('client_certificates')
        .column('revision')
        .execute();
      // The CRL lists revoked issued certificates; the expiry scan reads not_after.
      await db.schema
        .createIndex('client_certificates_source_revoked_idx')
        .ifNotExists()
        .on('client_certificates')
        .columns(['source', 'revoked_at'])
        .execute();
      await db.schema
        .createIndex('client_certificates_not_after_idx')
        .ifNotExists()
        .on('client_certificates')
        .column('not_after')
        .execute();

      await db.schema
        .createTable('platform_ca')
        .ifNotExists()
        .addColumn('role', 'text', (c) => c.primaryKey().check(sql`role in ('root', 'issuing')`))
        .addColumn('certificate_pem', 'text', (c) => c.notNull())
        .addColumn('ciphertext', binary, (c) => c.notNull())
        .addColumn('iv', binary, (c) => c.notNull())
        .addColumn('wrapped_dek', binary, (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('platform_crl')
        .ifNotExists()
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('crl_number', 'bigint', (c) => c.notNull())
        .addColumn('der', binary, (c) => c.notNull())
        .addColumn('this_update', 'bigint', (c) => c.notNull())
        .addColumn('next_update', 'bigint', (c) => c.notNull())
        .execute();
    },
  };
}
