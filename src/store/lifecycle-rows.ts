/**
 * Row mapping for the lifecycle tables (0003_lifecycle): notification settings, alerts,
 * notifications, deliveries, attempts and audit events. lifecycle.ts runs the queries.
 */
import type { Selectable } from 'kysely';
import { asBuffer, fromMs } from './columns.js';
import type {
  AlertsTable,
  AuditEventsTable,
  NotificationAttemptsTable,
  NotificationDeliveriesTable,
  NotificationSettingsTable,
  NotificationsTable,
} from './tables.js';
import type {
  AlertKind,
  AlertRecord,
  AuditEvent,
  DeliveryAttempt,
  DeliveryChannel,
  DeliveryRecord,
  DeliveryStatus,
  NotificationRecord,
  NotificationSettings,
} from './types.js';

function ms(date: Date): number {
  const value = date.getTime();
  if (Number.isNaN(value)) throw new RangeError('Invalid date');
  return value;
}

export function settingsToRow(tenantId: string, s: NotificationSettings): NotificationSettingsTable {
  return {
    tenant_id: tenantId,
    emails_json: JSON.stringify([...s.emails]),
    notify_members: s.notifyMembers ? 1 : 0,
    webhook_urls_json: JSON.stringify([...s.webhookUrls]),
    thresholds_json: JSON.stringify([...s.thresholdsDays]),
    webhook_secret_ciphertext: s.webhookSecret?.ciphertext ?? null,
    webhook_secret_iv: s.webhookSecret?.iv ?? null,
    webhook_secret_wrapped_dek: s.webhookSecret?.wrappedDek ?? null,
    webhook_secret_kek_id: s.webhookSecret?.kekId ?? null,
    webhook_secret_created_at: s.webhookSecretCreatedAt ? ms(s.webhookSecretCreatedAt) : null,
    updated_at: ms(s.updatedAt),
  };
}

export function settingsFromRow(row: Selectable<NotificationSettingsTable>): NotificationSettings {
  const settings: NotificationSettings = {
    tenantId: row.tenant_id,
    emails: JSON.parse(row.emails_json) as string[],
    notifyMembers: Number(row.notify_members) !== 0,
    webhookUrls: JSON.parse(row.webhook_urls_json) as string[],
    thresholdsDays: JSON.parse(row.thresholds_json) as number[],
    updatedAt: fromMs(row.updated_at),
  };
  if (
    row.webhook_secret_ciphertext !== null &&
    row.webhook_secret_iv !== null &&
    row.webhook_secret_wrapped_dek !== null &&
    row.webhook_secret_kek_id !== null
  ) {
    settings.webhookSecret = {
      ciphertext: asBuffer(row.webhook_secret_ciphertext),
      iv: asBuffer(row.webhook_secret_iv),
      wrappedDek: asBuffer(row.webhook_secret_wrapped_dek),
      kekId: row.webhook_secret_kek_id,
    };
  }
  if (row.webhook_secret_created_at !== null)
    settings.webhookSecretCreatedAt = fromMs(row.webhook_secret_created_at);
  return settings;
}

/** The key of an alert row: object, version and kind. */
export function alertKey(a: {
  objectType: string;
  objectId: string;
  objectVersion: string;
  kind: string;
}): string {
  return `${a.objectType}\u0000${a.objectId}\u0000${a.objectVersion}\u0000${a.kind}`;
}

export function alertToRow(tenantId: string, a: Omit<AlertRecord, 'raisedAt'>, raisedAt: Date): AlertsTable {
  return {
    tenant_id: tenantId,
    object_type: a.objectType,
    object_id: a.objectId,
    object_version: a.objectVersion,
    kind: a.kind,
    name: a.name,
    fingerprint_sha256: a.fingerprintSha256,
    not_after: ms(a.notAfter),
    threshold_days: a.thresholdDays,
    raised_at: ms(raisedAt),
    resolved_at: null,
  };
}

export function alertFromRow(row: Selectable<AlertsTable>): AlertRecord {
  return {
    tenantId: row.tenant_id,
    objectType: row.object_type,
    objectId: row.object_id,
    objectVersion: row.object_version,
    kind: row.kind as AlertKind,
    name: row.name,
    fingerprintSha256: row.fingerprint_sha256,
    notAfter: fromMs(row.not_after),
    thresholdDays: Number(row.threshold_days),
    raisedAt: fromMs(row.raised_at),
  };
}

export function notificationToRow(tenantId: string, n: NotificationRecord): NotificationsTable {
  return {
    id: n.id,
    tenant_id: tenantId,
    object_type: n.objectType,
    object_id: n.objectId,
    object_version: n.objectVersion,
    threshold_days: n.thresholdDays,
    kind: n.kind,
    not_after: ms(n.notAfter),
    payload_json: n.payload,
    created_at: ms(n.createdAt),
  };
}

export function notificationFromRow(row: Selectable<NotificationsTable>): NotificationRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    objectType: row.object_type,
    objectId: row.object_id,
    objectVersion: row.object_version,
    thresholdDays: Number(row.threshold_days),
    kind: row.kind as AlertKind,
    notAfter: fromMs(row.not_after),
    payload: row.payload_json,
    createdAt: fromMs(row.created_at),
  };
}

export function deliveryToRow(
  tenantId: string,
  notificationId: string,
  d: DeliveryRecord,
): NotificationDeliveriesTable {
  return {
    id: d.id,
    notification_id: notificationId,
    tenant_id: tenantId,
    channel: d.channel,
    target: d.target,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt ? ms(d.nextAttemptAt) : null,
    last_error: d.lastError ?? null,
    created_at: ms(d.createdAt),
    updated_at: ms(d.updatedAt),
    delivered_at: d.deliveredAt ? ms(d.deliveredAt) : null,
  };
}

export function deliveryFromRow(row: Selectable<NotificationDeliveriesTable>): DeliveryRecord {
  const delivery: DeliveryRecord = {
    id: row.id,
    notificationId: row.notification_id,
    tenantId: row.tenant_id,
    channel: row.channel as DeliveryChannel,
    target: row.target,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.next_attempt_at !== null) delivery.nextAttemptAt = fromMs(row.next_attempt_at);
  if (row.last_error !== null) delivery.lastError = row.last_error;
  if (row.delivered_at !== null) delivery.deliveredAt = fromMs(row.delivered_at);
  return delivery;
}

export function attemptToRow(tenantId: string, a: DeliveryAttempt): NotificationAttemptsTable {
  return {
    delivery_id: a.deliveryId,
    attempt: a.attempt,
    tenant_id: tenantId,
    at: ms(a.at),
    ok: a.ok ? 1 : 0,
    status_code: a.statusCode ?? null,
    error: a.error ?? null,
    duration_ms: Math.round(a.durationMs),
  };
}

export function attemptFromRow(row: Selectable<NotificationAttemptsTable>): DeliveryAttempt {
  const attempt: DeliveryAttempt = {
    deliveryId: row.delivery_id,
    attempt: Number(row.attempt),
    at: fromMs(row.at),
    ok: Number(row.ok) !== 0,
    durationMs: Number(row.duration_ms),
  };
  if (row.status_code !== null) attempt.statusCode = Number(row.status_code);
  if (row.error !== null) attempt.error = row.error;
  return attempt;
}

export function auditToRow(tenantId: string, e: AuditEvent): Omit<AuditEventsTable, 'seq'> {
  return {
    id: e.id,
    tenant_id: tenantId,
    at: ms(e.at),
    actor: e.actor,
    action: e.action,
    object_type: e.objectType,
    object_id: e.objectId,
    source_address: e.sourceAddress ?? null,
    request_id: e.requestId ?? null,
    detail_json: JSON.stringify(e.detail),
  };
}

export function auditFromRow(row: Selectable<AuditEventsTable>): AuditEvent & { seq: number } {
  const event: AuditEvent & { seq: number } = {
    seq: Number(row.seq),
    id: row.id,
    tenantId: row.tenant_id,
    at: fromMs(row.at),
    actor: row.actor,
    action: row.action,
    objectType: row.object_type,
    objectId: row.object_id,
    detail: JSON.parse(row.detail_json) as Record<string, unknown>,
  };
  if (row.source_address !== null) event.sourceAddress = row.source_address;
  if (row.request_id !== null) event.requestId = row.request_id;
  return event;
}
