import { type Kysely, type Migration, sql } from 'kysely';
import type { StoreDialect } from './index.js';

/**
 * The first schema: tenants, API keys, identities with numbered versions, mappings, meta and the
 * revision counter. Every statement is `if not exists` because SQLite DDL does not run in a
 * transaction under Kysely's Migrator: a migration cut short (crash, full disk) is simply run again.
 *
 * Every tenant-owned row carries `tenant_id`. Identities are also unique on `(tenant_id, id)` so that
 * versions and mappings reference an identity through `(tenant_id, identity_id)`: the database itself
 * refuses a mapping of one tenant that points at another tenant's identity.
 */
export function initial(dialect: StoreDialect): Migration {
  // Same column types everywhere except binary: SQLite calls it blob, PostgreSQL bytea.
  const binary = dialect === 'sqlite' ? 'blob' : 'bytea';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tenants')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('api_keys')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('token_sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('revoked_at', 'bigint')
        .addUniqueConstraint('api_keys_token_sha256_key', ['token_sha256'])
        .execute();
      await db.schema
        .createIndex('api_keys_tenant_id_idx')
        .ifNotExists()
        .on('api_keys')
        .column('tenant_id')
        .execute();

      await db.schema
        .createTable('identities')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('active_version', 'integer', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('deleted_at', 'bigint')
        // Target of the composite foreign keys below; also serves `where tenant_id = ?`.
        .addUniqueConstraint('identities_tenant_id_id_key', ['tenant_id', 'id'])
        .execute();

      await db.schema
        .createTable('identity_versions')
        .ifNotExists()
        .addColumn('identity_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
        .addColumn('not_before', 'bigint', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('summary_json', 'text', (c) => c.notNull())
        .addColumn('chain_json', 'text', (c) => c.notNull())
        .addColumn('certificates_pem', 'text', (c) => c.notNull())
        .addColumn('ciphertext', binary, (c) => c.notNull())
        .addColumn('iv', binary, (c) => c.notNull())
        .addColumn('wrapped_dek', binary, (c) => c.notNull())
        .addColumn('kek_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('activated_at', 'bigint')
        .addPrimaryKeyConstraint('identity_versions_pkey', ['identity_id', 'version'])
        .addForeignKeyConstraint(
          'identity_versions_identity_fkey',
          ['tenant_id', 'identity_id'],
          'identities',
          ['tenant_id', 'id'],
        )
        .execute();
      await db.schema
        .createIndex('identity_versions_tenant_id_identity_id_idx')
        .ifNotExists()
        .on('identity_versions')
        .columns(['tenant_id', 'identity_id'])
        .execute();
      // For finding an upload that is already stored, and for the expiry scan.
      await db.schema
        .createIndex('identity_versions_fingerprint_sha256_idx')
        .ifNotExists()
        .on('identity_versions')
        .column('fingerprint_sha256')
        .execute();
      await db.schema
        .createIndex('identity_versions_not_after_idx')
        .ifNotExists()
        .on('identity_versions')
        .column('not_after')
        .execute();

      await db.schema
        .createTable('mappings')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('match_kind', 'text', (c) => c.notNull())
        .addColumn('identity_id', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull())
        .addColumn('deleted', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('trust_anchors_pem', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addForeignKeyConstraint('mappings_identity_fkey', ['tenant_id', 'identity_id'], 'identities', [
          'tenant_id',
          'id',
        ])
        .execute();
      // Serves `where tenant_id = ?` (prefix) and the in-use count of softDeleteIdentity.
      await db.schema
        .createIndex('mappings_tenant_id_identity_id_idx')
        .ifNotExists()
        .on('mappings')
        .columns(['tenant_id', 'identity_id'])
        .execute();

      await db.schema
        .createTable('meta')
        .ifNotExists()
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', binary, (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('revision')
        .ifNotExists()
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into revision (id, value) values (1, 0) on conflict (id) do nothing`.execute(db);
    },
  };
}
