import type { Kysely, Migration } from 'kysely';
import { columnExists } from './0003-lifecycle.js';
import type { StoreDialect } from './index.js';

/**
 * Connections (issue 12): saved external API requests, and the tenant's default identity.
 *
 * Like the migrations before it, every statement can run again after a cut-short run.
 *
 * - `tenants.default_identity_id`: the identity a connection presents when its client-certificate
 *   switch is on and it names none ("domain level"). No foreign key: SQLite cannot add one with
 *   `alter table`, and the store keeps it pointing at a live identity of the same tenant (set in the
 *   transaction that creates the tenant's first identity, cleared in the one that deletes it).
 * - `connections`: `name` is unique per tenant (the runtime finds a connection by id or by name);
 *   the non-secret auth settings are JSON text (`auth_json`); the one secret of the auth type
 *   (password, header value or client secret) is sealed like a private key, in four columns that are
 *   all set or all null, with `secret_version` in its associated data (a ciphertext copied from an
 *   earlier version of the same row does not decrypt).
 * - `connections_tenant_id_created_at_id_idx`: the keyset order of the list (as 0010 adds for the
 *   other lists).
 */
export function connections(dialect: StoreDialect): Migration {
  const binary = dialect === 'sqlite' ? 'blob' : 'bytea';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      if (!(await columnExists(db, dialect, 'tenants', 'default_identity_id'))) {
        await db.schema.alterTable('tenants').addColumn('default_identity_id', 'text').execute();
      }
      await db.schema
        .createTable('connections')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('base_url', 'text', (c) => c.notNull())
        .addColumn('auth_type', 'text', (c) => c.notNull())
        .addColumn('auth_json', 'text', (c) => c.notNull())
        .addColumn('secret_ciphertext', binary)
        .addColumn('secret_iv', binary)
        .addColumn('secret_wrapped_dek', binary)
        .addColumn('secret_kek_id', 'text')
        .addColumn('secret_version', 'integer', (c) => c.notNull())
        .addColumn('client_certificate_enabled', 'integer', (c) => c.notNull())
        .addColumn('client_certificate_identity_id', 'text')
        .addColumn('trust_anchors_pem', 'text')
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('connections_tenant_id_name_key')
        .ifNotExists()
        .unique()
        .on('connections')
        .columns(['tenant_id', 'name'])
        .execute();
      // Which connections name an identity (an identity in use cannot be deleted).
      await db.schema
        .createIndex('connections_tenant_id_identity_idx')
        .ifNotExists()
        .on('connections')
        .columns(['tenant_id', 'client_certificate_identity_id'])
        .execute();
      await db.schema
        .createIndex('connections_tenant_id_created_at_id_idx')
        .ifNotExists()
        .on('connections')
        .columns(['tenant_id', 'created_at', 'id'])
        .execute();
    },
  };
}
