/**
 * The lifecycle's own tables: notification settings, alerts, notifications with their deliveries and
 * attempts, and the audit log; plus the scheduler's lock. Scheduled activations live with the
 * identities (identities.ts), whose tables they are.
 */
import type { Selectable, Transaction } from 'kysely';
import { type KeyOrder, readPage } from '../shared/paging.js';
import { asBuffer, fromMs, optionalMs, toMs } from './columns.js';
import { Aggregate, changedAny, type LockOutcome } from './database.js';
import {
  alertFromRow,
  alertKey,
  alertToRow,
  attemptFromRow,
  attemptToRow,
  auditFromRow,
  auditToRow,
  deliveryFromRow,
  deliveryToRow,
  notificationFromRow,
  notificationToRow,
  settingsFromRow,
  settingsToRow,
} from './lifecycle-rows.js';
import type { AlertsTable, AuditEventsTable, Database, NotificationsTable } from './tables.js';
import type {
  AlertRecord,
  AuditEvent,
  AuditQuery,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryStatus,
  FullScanClaim,
  LifecycleStore,
  NotificationRecord,
  NotificationSettings,
  NotificationWithDeliveries,
  Page,
  PageRequest,
} from './types.js';

/** The `meta` key of the last full expiry scan (see claimFullScan). */
const LAST_FULL_SCAN_KEY = 'lifecycle_last_full_scan_at';

/** Epoch milliseconds as 8 bytes, big-endian: byte order is numeric order. */
function instantBytes(ms: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(ms))));
  return bytes;
}

/** Unresolved alerts: soonest notAfter first, then the alert's key (object, version, kind). */
const ALERT_ORDER: KeyOrder<Selectable<AlertsTable>> = {
  list: 'alerts',
  columns: ['not_after', 'object_type', 'object_id', 'object_version', 'kind'],
  direction: 'asc',
  types: ['integer', 'string', 'string', 'string', 'string'],
};

/** Notifications: newest first. */
const NOTIFICATION_ORDER: KeyOrder<Selectable<NotificationsTable>> = {
  list: 'notifications',
  columns: ['created_at', 'id'],
  direction: 'desc',
  types: ['integer', 'string'],
};

/** The audit log: newest first, in the order of appending. */
const AUDIT_ORDER: KeyOrder<Selectable<AuditEventsTable>> = {
  list: 'audit_events',
  columns: ['seq'],
  direction: 'desc',
  types: ['integer'],
};

/**
 * {@link LifecycleStore} over the shared plumbing (database.ts). Bookkeeping rows are written with
 * `append` (no revision bump); notification settings with `write` (they are configuration).
 */
export class KyselyLifecycleStore extends Aggregate implements LifecycleStore {
  async getNotificationSettings(tenantId: string): Promise<NotificationSettings | undefined> {
    return this.database.first(this.database.ofTenant('notification_settings', tenantId), settingsFromRow);
  }

  /** Inserts or replaces; bumps the revision (settings are configuration). @throws AppError `not_found` (tenant) */
  async putNotificationSettings(tenantId: string, settings: NotificationSettings): Promise<void> {
    const row = settingsToRow(tenantId, settings);
    const { tenant_id: _key, ...changes } = row;
    await this.database.write((trx) =>
      trx
        .insertInto('notification_settings')
        .values(row)
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet(changes))
        .execute(),
    );
  }

  async syncAlerts(tenantId: string, current: Omit<AlertRecord, 'raisedAt'>[], at: Date): Promise<void> {
    const atMs = toMs(at);
    const wanted = new Map(current.map((a) => [alertKey(a), a]));
    try {
      await this.database.append(async (trx) => {
        const rows = await trx.selectFrom('alerts').selectAll().where('tenant_id', '=', tenantId).execute();
        const keyOf = (r: (typeof rows)[number]) =>
          alertKey({
            objectType: r.object_type,
            objectId: r.object_id,
            objectVersion: r.object_version,
            kind: r.kind,
          });
        const byKey = (r: (typeof rows)[number]) =>
          this.database
            .updateOfTenant(trx, 'alerts', tenantId)
            .where('object_type', '=', r.object_type)
            .where('object_id', '=', r.object_id)
            .where('object_version', '=', r.object_version)
            .where('kind', '=', r.kind);
        for (const row of rows) {
          const key = keyOf(row);
          const alert = wanted.get(key);
          if (alert === undefined) {
            if (row.resolved_at === null) await byKey(row).set({ resolved_at: atMs }).execute();
            continue;
          }
          wanted.delete(key);
          const fresh = alertToRow(tenantId, alert, row.resolved_at === null ? fromMs(row.raised_at) : at);
          const changed =
            row.resolved_at !== null ||
            row.name !== fresh.name ||
            Number(row.not_after) !== fresh.not_after ||
            Number(row.threshold_days) !== fresh.threshold_days;
          if (changed) {
            await byKey(row)
              .set({
                name: fresh.name,
                not_after: fresh.not_after,
                threshold_days: fresh.threshold_days,
                raised_at: fresh.raised_at,
                resolved_at: null,
              })
              .execute();
          }
        }
        for (const alert of wanted.values()) {
          await trx
            .insertInto('alerts')
            .values(alertToRow(tenantId, alert, at))
            .execute();
        }
      });
    } catch (err) {
      // Another process synced the same alerts at the same moment: its result stands.
      if (!this.database.isUniqueViolation(err)) throw err;
    }
  }

  /** Unresolved, soonest notAfter first. @throws AppError `invalid_cursor` */
  async listAlerts(tenantId: string, request: PageRequest): Promise<Page<AlertRecord>> {
    const unresolved = this.database.ofTenant('alerts', tenantId).where('resolved_at', 'is', null);
    return readPage(this.database, unresolved, ALERT_ORDER, [tenantId], request, alertFromRow);
  }

  async claimNotification(
    tenantId: string,
    notification: NotificationRecord,
    deliveries: DeliveryRecord[],
  ): Promise<boolean> {
    try {
      return await this.database.append(async (trx) => {
        const sent = await trx
          .selectFrom('notifications')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('object_type', '=', notification.objectType)
          .where('object_id', '=', notification.objectId)
          .where('object_version', '=', notification.objectVersion)
          .where('threshold_days', '<=', notification.thresholdDays)
          .limit(1)
          .executeTakeFirst();
        if (sent) return false;
        await trx.insertInto('notifications').values(notificationToRow(tenantId, notification)).execute();
        for (const delivery of deliveries) {
          await trx
            .insertInto('notification_deliveries')
            .values(deliveryToRow(tenantId, notification.id, delivery))
            .execute();
        }
        return true;
      });
    } catch (err) {
      if (this.database.isUniqueViolation(err)) return false;
      throw err;
    }
  }

  /** Newest first, each with its deliveries and their attempts. @throws AppError `invalid_cursor` */
  async listNotifications(tenantId: string, request: PageRequest): Promise<Page<NotificationWithDeliveries>> {
    const { database } = this;
    const notifications = database.ofTenant('notifications', tenantId);
    const page = await readPage(database, notifications, NOTIFICATION_ORDER, [tenantId], request, (r) => r);
    const rows = page.items;
    if (rows.length === 0) return { ...page, items: [] };
    return database.read(async () => {
      const deliveries = await database
        .ofTenant('notification_deliveries', tenantId)
        .where(
          'notification_id',
          'in',
          rows.map((r) => r.id),
        )
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const ofDeliveries = (ids: string[]) =>
        database
          .ofTenant('notification_attempts', tenantId)
          .where('delivery_id', 'in', ids)
          .orderBy('delivery_id')
          .orderBy('attempt')
          .execute();
      const attempts = deliveries.length === 0 ? [] : await ofDeliveries(deliveries.map((d) => d.id));
      const items = rows.map((row) => {
        const own = deliveries.filter((d) => d.notification_id === row.id);
        const ids = new Set(own.map((d) => d.id));
        return {
          notification: notificationFromRow(row),
          deliveries: own.map(deliveryFromRow),
          attempts: attempts.filter((a) => ids.has(a.delivery_id)).map(attemptFromRow),
        };
      });
      return { ...page, items };
    });
  }

  async getNotification(tenantId: string, notificationId: string): Promise<NotificationRecord | undefined> {
    const notifications = this.database.ofTenant('notifications', tenantId);
    return this.database.first(notifications.where('id', '=', notificationId), notificationFromRow);
  }

  async listDueDeliveries(now: Date, limit: number): Promise<DeliveryRecord[]> {
    const pending = this.database.db
      .selectFrom('notification_deliveries')
      .selectAll()
      .where('status', '=', 'pending');
    const due = pending.where('next_attempt_at', '<=', toMs(now)).orderBy('next_attempt_at').orderBy('id');
    return this.database.all(due.limit(limit), deliveryFromRow);
  }

  async leaseDelivery(
    tenantId: string,
    deliveryId: string,
    expected: Date,
    leaseUntil: Date,
  ): Promise<boolean> {
    return this.database.append(async (trx) => {
      const pending = this.#delivery(trx, tenantId, deliveryId).where('status', '=', 'pending');
      return changedAny(
        pending.where('next_attempt_at', '=', toMs(expected)).set({ next_attempt_at: toMs(leaseUntil) }),
      );
    });
  }

  async recordDeliveryAttempt(
    tenantId: string,
    attempt: DeliveryAttempt,
    next: { status: DeliveryStatus; nextAttemptAt?: Date; lastError?: string; deliveredAt?: Date },
  ): Promise<void> {
    await this.database.append(async (trx) => {
      await trx.insertInto('notification_attempts').values(attemptToRow(tenantId, attempt)).execute();
      await this.#delivery(trx, tenantId, attempt.deliveryId)
        .set({
          status: next.status,
          attempts: attempt.attempt,
          next_attempt_at: optionalMs(next.nextAttemptAt),
          last_error: next.lastError ?? null,
          updated_at: toMs(attempt.at),
          delivered_at: optionalMs(next.deliveredAt),
        })
        .execute();
    });
  }

  async appendAuditEvent(tenantId: string, event: AuditEvent): Promise<void> {
    await this.database.append((trx) =>
      trx.insertInto('audit_events').values(auditToRow(tenantId, event)).execute(),
    );
  }

  /**
   * Newest first (by `seq`, the order of appending); a cursor is bound to the filters it was made
   * with. @throws AppError `invalid_cursor`
   */
  async listAuditEvents(
    tenantId: string,
    query: AuditQuery,
    request: PageRequest,
  ): Promise<Page<AuditEvent>> {
    let q = this.database.ofTenant('audit_events', tenantId);
    if (query.action !== undefined) q = q.where('action', '=', query.action);
    if (query.objectType !== undefined) q = q.where('object_type', '=', query.objectType);
    if (query.objectId !== undefined) q = q.where('object_id', '=', query.objectId);
    if (query.since !== undefined) q = q.where('at', '>=', toMs(query.since));
    if (query.until !== undefined) q = q.where('at', '<', toMs(query.until));
    const filters = [
      tenantId,
      query.action,
      query.objectType,
      query.objectId,
      query.since?.toISOString(),
      query.until?.toISOString(),
    ];
    return readPage(this.database, q, AUDIT_ORDER, filters, request, auditFromRow);
  }

  async nextDeliveryAt(): Promise<Date | undefined> {
    const pending = this.database.db.selectFrom('notification_deliveries').where('status', '=', 'pending');
    const at = await this.database.first(
      pending.select((eb) => eb.fn.min('next_attempt_at').as('at')),
      (r) => r.at,
    );
    return at === null || at === undefined ? undefined : fromMs(at);
  }

  /**
   * PostgreSQL: a session advisory lock held on one reserved connection for the duration of
   * `work`; SQLite: one process per database file, so `work` always runs (see postgres.ts, sqlite.ts).
   */
  async withSchedulerLock<T>(work: () => Promise<T>): Promise<LockOutcome<T>> {
    const { database } = this;
    return database.support.withSchedulerLock(database.db, work, (statement) => database.read(statement));
  }

  /**
   * The last full scan is a `meta` row: 8 bytes, big-endian epoch milliseconds, so that comparing the
   * blobs (SQLite memcmp, PostgreSQL bytea) compares the instants, and the claim is one conditional
   * UPDATE: PostgreSQL re-checks its condition after waiting for a concurrent claimer's row lock,
   * SQLite serializes writers.
   */
  async claimFullScan(at: Date, intervalMs: number, force = false): Promise<FullScanClaim> {
    const atMs = toMs(at);
    const value = instantBytes(atMs);
    return this.database.append(async (trx) => {
      await trx
        .insertInto('meta')
        .values({ key: LAST_FULL_SCAN_KEY, value: instantBytes(0) })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      let claim = trx.updateTable('meta').set({ value }).where('key', '=', LAST_FULL_SCAN_KEY);
      if (!force) claim = claim.where('value', '<=', instantBytes(Math.max(0, atMs - intervalMs)));
      if (await changedAny(claim)) return { claimed: true };
      const row = await trx
        .selectFrom('meta')
        .select('value')
        .where('key', '=', LAST_FULL_SCAN_KEY)
        .executeTakeFirstOrThrow();
      return { claimed: false, lastScanAt: fromMs(Number(asBuffer(row.value).readBigUInt64BE(0))) };
    });
  }

  /** An UPDATE of delivery `deliveryId` of `tenantId`, inside the caller's transaction. */
  #delivery(trx: Transaction<Database>, tenantId: string, deliveryId: string) {
    return this.database
      .updateOfTenant(trx, 'notification_deliveries', tenantId)
      .where('id', '=', deliveryId);
  }
}
