/**
 * Store types of lifecycle (notifications, alerts, audit, scheduling) and key custody (sealed keys,
 * backups); re-exported by types.ts (callers import store/index.ts).
 */

import type { Page, PageRequest } from '../shared/paging.js';
import type { SealedSecret } from './types.js';

// ---- lifecycle (issue 4): notifications, alerts, audit, scheduling ----------------------------------

/** A tenant's notification settings (API.md "Lifecycle"); thresholds are whole days, largest first. */
export interface NotificationSettings {
  tenantId: string;
  emails: string[];
  /** Members whose roles own integrations get the expiry e-mails too (default true). */
  notifyMembers: boolean;
  webhookUrls: string[];
  thresholdsDays: number[];
  /** The webhook signing secret, sealed (AAD: tenant); absent until first generated. */
  webhookSecret?: SealedSecret;
  webhookSecretCreatedAt?: Date;
  updatedAt: Date;
}

export type AlertKind = 'expiring' | 'expired';

/** An alert raised by the expiry scanner for one version of one certificate-bearing object. */
export interface AlertRecord {
  tenantId: string;
  /** `identity`, `client_certificate`, ... */
  objectType: string;
  objectId: string;
  /** The identity version number, or another object's version marker (its fingerprint). */
  objectVersion: string;
  kind: AlertKind;
  name: string;
  fingerprintSha256: string;
  notAfter: Date;
  /** The threshold (days) that made it `expiring`; 0 for `expired`. */
  thresholdDays: number;
  raisedAt: Date;
}

/** One expiry notification (per object, version and threshold), sent once over every channel. */
export interface NotificationRecord {
  id: string;
  tenantId: string;
  objectType: string;
  objectId: string;
  objectVersion: string;
  /** 0 for the "expired" notification. */
  thresholdDays: number;
  /** An expiry alert's kind, or `decision` (the operator decided a CSR: no threshold, no expiry). */
  kind: AlertKind | 'decision';
  notAfter: Date;
  /** The event JSON as webhooks receive it. Public facts only. */
  payload: string;
  createdAt: Date;
}

export type DeliveryChannel = 'email' | 'webhook';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One channel + target of a notification, retried with backoff until delivered or given up. */
export interface DeliveryRecord {
  id: string;
  notificationId: string;
  tenantId: string;
  channel: DeliveryChannel;
  /** Comma-separated addresses (email) or the URL (webhook). */
  target: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt?: Date;
  lastError?: string;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt?: Date;
}

/** One try of one delivery. */
export interface DeliveryAttempt {
  deliveryId: string;
  /** 1-based. */
  attempt: number;
  at: Date;
  ok: boolean;
  /** HTTP status of a webhook answer, or the SMTP reply code. */
  statusCode?: number;
  /** A short, safe description of the failure (no secrets, no response bodies). */
  error?: string;
  durationMs: number;
}

/** A notification with its deliveries and their attempts, as {@link LifecycleStore.listNotifications} returns it. */
export interface NotificationWithDeliveries {
  notification: NotificationRecord;
  deliveries: DeliveryRecord[];
  attempts: DeliveryAttempt[];
}

/** An audit log entry. `detail` holds safe facts only (ids, names, fingerprints). */
export interface AuditEvent {
  id: string;
  tenantId: string;
  at: Date;
  /** `operator`, `api-key:<id>`, `member:<id>`, `scheduler`, `cli`. */
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  sourceAddress?: string;
  requestId?: string;
  detail: Record<string, unknown>;
}

/** Filters of {@link LifecycleStore.listAuditEvents}; newest first. */
export interface AuditQuery {
  action?: string;
  objectType?: string;
  objectId?: string;
  /** Inclusive lower bound of `at`. */
  since?: Date;
  /** Exclusive upper bound of `at`. */
  until?: Date;
}

/** What {@link LifecycleStore.claimFullScan} answers. */
export type FullScanClaim = { claimed: true } | { claimed: false; lastScanAt: Date };

/**
 * The lifecycle's own rows. Except for notification settings (configuration, so it bumps the
 * revision like every other change), these are bookkeeping: writing them does not bump the
 * revision, so a scan or an audit entry never makes other processes drop their runtime caches.
 * The scheduler methods (`listDueDeliveries`, `nextDeliveryAt`, `withSchedulerLock`,
 * `claimFullScan`) span every
 * tenant. Scheduled activations are the identities' (IdentityStore).
 */
export interface LifecycleStore {
  getNotificationSettings(tenantId: string): Promise<NotificationSettings | undefined>;
  /** Inserts or replaces; bumps the revision. */
  putNotificationSettings(tenantId: string, settings: NotificationSettings): Promise<void>;
  /**
   * Makes the tenant's unresolved alerts exactly `current` (keyed by object, version and kind): new
   * ones are raised at `at`, ones no longer current are resolved at `at`.
   */
  syncAlerts(tenantId: string, current: Omit<AlertRecord, 'raisedAt'>[], at: Date): Promise<void>;
  /** Unresolved alerts, soonest notAfter first. @throws AppError `invalid_cursor` */
  listAlerts(tenantId: string, request: PageRequest): Promise<Page<AlertRecord>>;
  /**
   * Inserts the notification and its deliveries in one transaction unless a notification for the
   * same object and version with a threshold ≤ this one exists (this one, or a more urgent one,
   * was already sent). True when inserted; false when it existed, also when another process
   * inserted it at the same moment (unique key).
   */
  claimNotification(
    tenantId: string,
    notification: NotificationRecord,
    deliveries: DeliveryRecord[],
  ): Promise<boolean>;
  /** Newest first, with their deliveries and attempts. @throws AppError `invalid_cursor` */
  listNotifications(tenantId: string, request: PageRequest): Promise<Page<NotificationWithDeliveries>>;
  getNotification(tenantId: string, notificationId: string): Promise<NotificationRecord | undefined>;
  /** Pending deliveries due at `now`, any tenant, earliest due first. */
  listDueDeliveries(now: Date, limit: number): Promise<DeliveryRecord[]>;
  /**
   * Leases a pending delivery for one attempt: moves `nextAttemptAt` from `expected` to
   * `leaseUntil`. False when another worker leased or finished it first.
   */
  leaseDelivery(tenantId: string, deliveryId: string, expected: Date, leaseUntil: Date): Promise<boolean>;
  /** Records an attempt and the delivery's new state in one transaction. */
  recordDeliveryAttempt(
    tenantId: string,
    attempt: DeliveryAttempt,
    next: { status: DeliveryStatus; nextAttemptAt?: Date; lastError?: string; deliveredAt?: Date },
  ): Promise<void>;
  appendAuditEvent(tenantId: string, event: AuditEvent): Promise<void>;
  /** Newest first; a cursor belongs to the filters it was made with. @throws AppError `invalid_cursor` */
  listAuditEvents(tenantId: string, query: AuditQuery, request: PageRequest): Promise<Page<AuditEvent>>;
  /** The earliest retry of a pending delivery, any tenant, for arming the scheduler's timer. */
  nextDeliveryAt(): Promise<Date | undefined>;
  /**
   * Runs `work` only if no other process holds the scheduler lock (a PostgreSQL session advisory
   * lock; SQLite serves one process and always runs it). `{ ran: false }` when skipped.
   */
  withSchedulerLock<T>(work: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
  /**
   * Claims the full expiry scan due at `at` for this process, across every process on the store:
   * true, and `at` recorded as the last scan, unless a scan was recorded within `intervalMs` before
   * `at`; then false with that scan's time. One atomic statement, so two processes can never both
   * claim one interval (the scheduler lock alone only keeps their scans from overlapping).
   * `force` claims in any case (and records `at`).
   */
  claimFullScan(at: Date, intervalMs: number, force?: boolean): Promise<FullScanClaim>;
}

/** Which row a sealed secret belongs to; enough to rebuild the AAD it was sealed with. */
export type SealedKeyRef =
  | { kind: 'identity_key'; tenantId: string; identityId: string; version: number }
  | { kind: 'ca_key'; role: 'root' | 'issuing'; certificatePem: string }
  | { kind: 'outbound_ca_key'; role: 'root' | 'issuing'; certificatePem: string }
  | { kind: 'webhook_secret'; tenantId: string }
  | { kind: 'connection_secret'; tenantId: string; connectionId: string; secretVersion: number };

/** A sealed secret and its row. */
export interface SealedKeyRow {
  ref: SealedKeyRef;
  secret: SealedSecret;
}

/** One row's DEK wrapped anew: `from` is what the row must still hold for the change to apply. */
export interface SealedKeyChange {
  ref: SealedKeyRef;
  from: { kekId: string; wrapped: Buffer };
  to: { kekId: string; wrapped: Buffer };
}

/** Every sealed secret of the deployment, across tenants (KEK rotation only; no tenant API uses it). */
export interface SealedKeyStore {
  /** Up to `limit` sealed rows, those wrapped by `excludingKekId` left out. */
  listSealedKeys(options: { limit: number; excludingKekId?: string }): Promise<SealedKeyRow[]>;
  /** Applies each change whose row still holds `from`, in one transaction; returns how many applied. */
  rewrapSealedKeys(changes: SealedKeyChange[]): Promise<number>;
  /** How many sealed rows each KEK (`kekId`) wraps. */
  countSealedKeys(): Promise<Record<string, number>>;
}

/** The first line of a backup (see store/backup.ts). */
export interface SnapshotHeader {
  format: 'twoway-backup';
  version: 1;
  /** The store it was made from; a backup restores into either. */
  dialect: 'sqlite' | 'postgres';
  /** RFC 3339. */
  createdAt: string;
  /** Names of the migrations the source had applied. */
  migrations: string[];
  /** Tables, in the order their rows follow. */
  tables: string[];
}

/** A consistent snapshot of the whole store, out and in (`twoway backup`, `twoway restore`). */
export interface BackupStore {
  /** Writes the snapshot line by line (JSON, no newline) from one read transaction. */
  exportSnapshot(write: (line: string) => Promise<void>): Promise<{ rows: number }>;
  /**
   * Loads a snapshot into this migrated, empty store in one transaction.
   * @throws AppError `backup_invalid`
   */
  importSnapshot(lines: AsyncIterable<string>): Promise<{ rows: number }>;
}
