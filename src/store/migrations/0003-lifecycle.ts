import { type Kysely, type Migration, sql } from 'kysely';
import type { StoreDialect } from './index.js';

/**
 * Lifecycle (issue 4): scheduled activation of identity versions, notification settings, alerts,
 * notifications with their deliveries and delivery attempts, and the audit log.
 *
 * Like 0001, every statement can run again after a cut-short run: tables and indexes are `if not
 * exists`, and the one `alter table` first checks whether the column is already there (SQLite has
 * no `add column if not exists`).
 *
 * Uniqueness carries the "once" of "one notification per object, version and threshold, even across
 * restarts": `notifications` is unique on (tenant, object type, object id, object version,
 * threshold), so a second scanner (another process, or this one after a restart) cannot claim the
 * same notification again.
 */
export function lifecycle(dialect: StoreDialect): Migration {
  const binary = dialect === 'sqlite' ? 'blob' : 'bytea';
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      if (!(await columnExists(db, dialect, 'identity_versions', 'activate_at'))) {
        await db.schema.alterTable('identity_versions').addColumn('activate_at', 'bigint').execute();
      }
      await db.schema
        .createIndex('identity_versions_activate_at_idx')
        .ifNotExists()
        .on('identity_versions')
        .column('activate_at')
        .execute();

      await db.schema
        .createTable('notification_settings')
        .ifNotExists()
        .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
        .addColumn('emails_json', 'text', (c) => c.notNull())
        .addColumn('webhook_urls_json', 'text', (c) => c.notNull())
        .addColumn('thresholds_json', 'text', (c) => c.notNull())
        // The webhook signing secret, sealed like a private key (kms/envelope.ts); all four or none.
        .addColumn('webhook_secret_ciphertext', binary)
        .addColumn('webhook_secret_iv', binary)
        .addColumn('webhook_secret_wrapped_dek', binary)
        .addColumn('webhook_secret_kek_id', 'text')
        .addColumn('webhook_secret_created_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('alerts')
        .ifNotExists()
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('object_type', 'text', (c) => c.notNull())
        .addColumn('object_id', 'text', (c) => c.notNull())
        .addColumn('object_version', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('fingerprint_sha256', 'text', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('threshold_days', 'integer', (c) => c.notNull())
        .addColumn('raised_at', 'bigint', (c) => c.notNull())
        .addColumn('resolved_at', 'bigint')
        .addPrimaryKeyConstraint('alerts_pkey', [
          'tenant_id',
          'object_type',
          'object_id',
          'object_version',
          'kind',
        ])
        .execute();

      await db.schema
        .createTable('notifications')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('object_type', 'text', (c) => c.notNull())
        .addColumn('object_id', 'text', (c) => c.notNull())
        .addColumn('object_version', 'text', (c) => c.notNull())
        .addColumn('threshold_days', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('not_after', 'bigint', (c) => c.notNull())
        .addColumn('payload_json', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('notifications_once_key', [
          'tenant_id',
          'object_type',
          'object_id',
          'object_version',
          'threshold_days',
        ])
        .execute();
      await db.schema
        .createIndex('notifications_tenant_id_created_at_idx')
        .ifNotExists()
        .on('notifications')
        .columns(['tenant_id', 'created_at'])
        .execute();

      await db.schema
        .createTable('notification_deliveries')
        .ifNotExists()
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('notification_id', 'text', (c) => c.notNull().references('notifications.id'))
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'bigint')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('delivered_at', 'bigint')
        .execute();
      // The delivery worker's query: pending deliveries by due time.
      await db.schema
        .createIndex('notification_deliveries_status_next_attempt_at_idx')
        .ifNotExists()
        .on('notification_deliveries')
        .columns(['status', 'next_attempt_at'])
        .execute();
      await db.schema
        .createIndex('notification_deliveries_notification_id_idx')
        .ifNotExists()
        .on('notification_deliveries')
        .column('notification_id')
        .execute();

      await db.schema
        .createTable('notification_attempts')
        .ifNotExists()
        .addColumn('delivery_id', 'text', (c) => c.notNull().references('notification_deliveries.id'))
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('ok', 'integer', (c) => c.notNull())
        .addColumn('status_code', 'integer')
        .addColumn('error', 'text')
        .addColumn('duration_ms', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('notification_attempts_pkey', ['delivery_id', 'attempt'])
        .execute();

      // `seq` orders events (and is the paging cursor); `id` is the public id.
      await db.schema
        .createTable('audit_events')
        .ifNotExists()
        .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) =>
          dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        )
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('object_type', 'text', (c) => c.notNull())
        .addColumn('object_id', 'text', (c) => c.notNull())
        .addColumn('source_address', 'text')
        .addColumn('request_id', 'text')
        .addColumn('detail_json', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_tenant_id_seq_idx')
        .ifNotExists()
        .on('audit_events')
        .columns(['tenant_id', 'seq'])
        .execute();
    },
  };
}

/** True when `table` has `column` (SQLite has no `add column if not exists`); also used by later migrations. */
export async function columnExists(
  db: Kysely<unknown>,
  dialect: StoreDialect,
  table: string,
  column: string,
): Promise<boolean> {
  if (dialect === 'sqlite') {
    const { rows } = await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(db);
    return rows.some((r) => r.name === column);
  }
  const { rows } = await sql`
    select 1 from information_schema.columns
    where table_schema = current_schema() and table_name = ${table} and column_name = ${column}`.execute(db);
  return rows.length > 0;
}
