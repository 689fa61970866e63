/**
 * Row types of the Twoway database as Kysely sees them (one shape for SQLite and PostgreSQL).
 *
 * Conventions, identical on both engines so that every query is written once:
 * - instants are `bigint` milliseconds since the Unix epoch (exact to the millisecond, compare as
 *   numbers); PostgreSQL int8 is parsed to a JS number by the pool (see postgres.ts);
 * - booleans are integers, 0 or 1 (SQLite has no boolean type);
 * - binary values are `blob` (SQLite) / `bytea` (PostgreSQL) and read back as `Buffer`;
 * - structured public data (certificate summary, chain) is JSON text.
 */

import type { Generated } from 'kysely';

export interface TenantsTable {
  id: string;
  name: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  /** Unique across tenants: authentication finds the key by hash alone. */
  token_sha256: string;
  created_at: number;
  revoked_at: number | null;
  /** Display name (0006_people; older keys read `API key`). */
  name: string;
  /** Role names as a JSON array (0006_people; older keys read `["admin"]`). */
  roles_json: string;
  /** When the key last authenticated a request, to the minute (0006_people). */
  last_used_at: number | null;
}

export interface IdentitiesTable {
  id: string;
  tenant_id: string;
  name: string;
  active_version: number;
  /** 0 or 1. */
  disabled: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface IdentityVersionsTable {
  identity_id: string;
  version: number;
  tenant_id: string;
  /** Copied out of `summary_json` so queries can filter on them. */
  fingerprint_sha256: string;
  not_before: number;
  not_after: number;
  /** CertificateSummary as JSON, instants as RFC 3339 strings. */
  summary_json: string;
  /** ChainEntry[] as JSON, instants as RFC 3339 strings. */
  chain_json: string;
  certificates_pem: string;
  ciphertext: Buffer;
  iv: Buffer;
  wrapped_dek: Buffer;
  kek_id: string;
  created_at: number;
  activated_at: number | null;
  /** When the scheduler is to activate this version (0003_lifecycle); null once done or never asked. */
  activate_at: number | null;
}

export interface MappingsTable {
  id: string;
  tenant_id: string;
  name: string;
  service: string;
  url: string;
  /** MatchKind; not called `match`, which is an SQL keyword. */
  match_kind: string;
  identity_id: string;
  /** 0 or 1. */
  enabled: number;
  /** 0 or 1. */
  deleted: number;
  trust_anchors_pem: string | null;
  created_at: number;
  updated_at: number;
}

export interface MetaTable {
  key: string;
  value: Buffer;
}

/** Exactly one row, `id = 1`. */
export interface RevisionTable {
  id: number;
  value: number;
}

// ---- lifecycle (0003_lifecycle) --------------------------------------------------------------------

export interface NotificationSettingsTable {
  tenant_id: string;
  emails_json: string;
  webhook_urls_json: string;
  /** number[], largest first. */
  thresholds_json: string;
  webhook_secret_ciphertext: Buffer | null;
  webhook_secret_iv: Buffer | null;
  webhook_secret_wrapped_dek: Buffer | null;
  webhook_secret_kek_id: string | null;
  webhook_secret_created_at: number | null;
  updated_at: number;
  /** 0 or 1: members whose roles own integrations get the e-mails too (0006_people; default 1). */
  notify_members: number;
}

export interface AlertsTable {
  tenant_id: string;
  object_type: string;
  object_id: string;
  object_version: string;
  /** `expiring` or `expired`. */
  kind: string;
  name: string;
  fingerprint_sha256: string;
  not_after: number;
  threshold_days: number;
  raised_at: number;
  resolved_at: number | null;
}

export interface NotificationsTable {
  id: string;
  tenant_id: string;
  object_type: string;
  object_id: string;
  object_version: string;
  /** 0 for the "expired" notification. */
  threshold_days: number;
  kind: string;
  not_after: number;
  /** The event as sent to webhooks (and rendered into e-mails); public facts only. */
  payload_json: string;
  created_at: number;
}

export interface NotificationDeliveriesTable {
  id: string;
  notification_id: string;
  tenant_id: string;
  /** `email` or `webhook`. */
  channel: string;
  /** Comma-separated addresses (email) or the URL (webhook). */
  target: string;
  /** `pending`, `delivered` or `failed` (gave up). */
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

export interface NotificationAttemptsTable {
  delivery_id: string;
  attempt: number;
  tenant_id: string;
  at: number;
  /** 0 or 1. */
  ok: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface AuditEventsTable {
  seq: Generated<number>;
  id: string;
  tenant_id: string;
  at: number;
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  source_address: string | null;
  request_id: string | null;
  detail_json: string;
}

/** Inbound client certificates (migration 0002). */
export interface ClientCertificatesTable {
  id: string;
  tenant_id: string;
  name: string;
  /** ClientCertificateSource: `uploaded` or `issued`. */
  source: string;
  /**
   * Unique per tenant among rows that are not deleted (migration 0004); several tenants may register
   * the same public certificate.
   */
  fingerprint_sha256: string;
  /** Uppercase hex, for the CRL. */
  serial_number: string;
  not_before: number;
  not_after: number;
  /** CertificateSummary as JSON, instants as RFC 3339 strings. */
  summary_json: string;
  certificate_pem: string;
  revoked_at: number | null;
  revocation_reason: string | null;
  deleted_at: number | null;
  created_at: number;
  updated_at: number;
  /** The store revision of the row's last change: the edge index asks for rows newer than it has. */
  revision: number;
}

/** The platform CA: `root` and `issuing`, each with its sealed private key (migration 0002). */
export interface PlatformCaTable {
  role: string;
  certificate_pem: string;
  ciphertext: Buffer;
  iv: Buffer;
  wrapped_dek: Buffer;
  kek_id: string;
  created_at: number;
}

/** The current CRL of the platform CA; exactly one row, `id = 1` (migration 0002). */
export interface PlatformCrlTable {
  id: number;
  crl_number: number;
  der: Buffer;
  this_update: number;
  next_update: number;
}

// ---- people (0006_people) ------------------------------------------------------------------------

/** A tenant's custom role; the built-in ones (`admin`, `viewer`) are not stored. */
export interface RolesTable {
  tenant_id: string;
  name: string;
  description: string;
  /** Permission names as a JSON array. */
  permissions_json: string;
  created_at: number;
  updated_at: number;
}

/** A person of a tenant, keyed by the platform's own user id. */
export interface MembersTable {
  tenant_id: string;
  id: string;
  email: string;
  name: string | null;
  /** Role names as a JSON array. */
  roles_json: string;
  created_at: number;
  updated_at: number;
}

/** A signed-in browser session; the cookie value itself is never stored, only its SHA-256. */
export interface SessionsTable {
  id_sha256: string;
  /** `member` or `operator`. */
  kind: string;
  tenant_id: string | null;
  member_id: string | null;
  created_at: number;
  last_seen_at: number;
  /** The absolute end of the session, whatever its activity. */
  expires_at: number;
}

/** A single-use portal (or operator console) link; only the SHA-256 of its token is stored. */
export interface PortalLinksTable {
  token_sha256: string;
  /** `member` or `operator`. */
  kind: string;
  tenant_id: string | null;
  member_id: string | null;
  return_url: string | null;
  intent: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** The whole schema, for `Kysely<Database>`. */
export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  identities: IdentitiesTable;
  identity_versions: IdentityVersionsTable;
  mappings: MappingsTable;
  meta: MetaTable;
  revision: RevisionTable;
  client_certificates: ClientCertificatesTable;
  platform_ca: PlatformCaTable;
  platform_crl: PlatformCrlTable;
  notification_settings: NotificationSettingsTable;
  alerts: AlertsTable;
  notifications: NotificationsTable;
  notification_deliveries: NotificationDeliveriesTable;
  notification_attempts: NotificationAttemptsTable;
  audit_events: AuditEventsTable;
  roles: RolesTable;
  members: MembersTable;
  sessions: SessionsTable;
  portal_links: PortalLinksTable;
}
