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

/** The whole schema, for `Kysely<Database>`. */
export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  identities: IdentitiesTable;
  identity_versions: IdentityVersionsTable;
  mappings: MappingsTable;
  meta: MetaTable;
  revision: RevisionTable;
}
