import { type Kysely, type Migration, sql } from 'kysely';
import { columnExists } from './0003-lifecycle.js';
import type { StoreDialect } from './index.js';

/**
 * People (issue 13): custom roles, members, browser sessions and portal links; API keys gain a
 * name, roles and a last-used time; notification settings gain `notify_members`.
 *
 * As in 0001 and 0003 every statement can run again after a cut-short run: tables and indexes are
 * `if not exists` and each `add column` first checks that the column is missing. Existing API keys
 * become `admin` keys named `API key`, which is what they could do before.
 *
 * Secrets are never stored: a session is found by the SHA-256 of its cookie value, a portal link by
 * the SHA-256 of its token (both 256-bit random values, so a fast hash is enough).
 */
export function people(dialect: StoreDialect): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      const addColumn = async (table: string, column: string, type: string, fallback?: string) => {
        if (await columnExists(db, dialect, table, column)) return;
        await db.schema
          .alterTable(table)
          .addColumn(column, sql.raw(type), (c) =>
            fallback === undefined ? c : c.notNull().defaultTo(sql.raw(fallback)),
          )
          .execute();
      };
      await addColumn('api_keys', 'name', 'text', "'API key'");
      await addColumn('api_keys', 'roles_json', 'text', `'["admin"]'`);
      await addColumn('api_keys', 'last_used_at', 'bigint');
      await addColumn('notification_settings', 'notify_members', 'integer', '1');
      // Actors name their kind now (`api-key:<id>`); entries written before say the bare key id.
      await sql`update audit_events set actor = ${sql.lit('api-key:')} || actor
        where actor like ${sql.lit('key\\_%')} escape ${sql.lit('\\')}`.execute(db);

      await db.schema
        .createTable('roles')
        .ifNotExists()
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('permissions_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('roles_pkey', ['tenant_id', 'name'])
        .execute();

      // Member ids are the platform's own user ids: unique within a tenant only.
      await db.schema
        .createTable('members')
        .ifNotExists()
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('roles_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('members_pkey', ['tenant_id', 'id'])
        .execute();

      await db.schema
        .createTable('sessions')
        .ifNotExists()
        .addColumn('id_sha256', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
        .addColumn('member_id', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('sessions_tenant_id_member_id_idx')
        .ifNotExists()
        .on('sessions')
        .columns(['tenant_id', 'member_id'])
        .execute();
      await db.schema
        .createIndex('sessions_expires_at_idx')
        .ifNotExists()
        .on('sessions')
        .column('expires_at')
        .execute();

      await db.schema
        .createTable('portal_links')
        .ifNotExists()
        .addColumn('token_sha256', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('tenant_id', 'text', (c) => c.references('tenants.id'))
        .addColumn('member_id', 'text')
        .addColumn('return_url', 'text')
        .addColumn('intent', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema
        .createIndex('portal_links_expires_at_idx')
        .ifNotExists()
        .on('portal_links')
        .column('expires_at')
        .execute();
    },
  };
}
