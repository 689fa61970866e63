/**
 * Store interfaces: one per aggregate, `tenantId` first on every method, domain types out. The
 * Kysely implementation (store/kysely-store.ts) serves SQLite and PostgreSQL from the same queries.
 * Driver errors never escape: unique violations become AppError codes (`tenant_exists`).
 * Instants are `Date` values here and RFC 3339 strings on the wire.
 */

/** A tenant: the isolation boundary. */
export interface Tenant {
  id: string;
  name: string;
  createdAt: Date;
}

/** A tenant API key; only the SHA-256 of the secret is kept. */
export interface ApiKey {
  id: string;
  tenantId: string;
  /** SHA-256 of the whole bearer token, lowercase hex. */
  tokenSha256: string;
  createdAt: Date;
  revokedAt?: Date;
}

/** Key material sealed with envelope encryption (see kms/envelope.ts). */
export interface SealedSecret {
  /** AES-256-GCM ciphertext of the PKCS#8 DER key, followed by the 16-byte tag. */
  ciphertext: Buffer;
  /** 12-byte GCM nonce. */
  iv: Buffer;
  /** The DEK wrapped by the KMS. */
  wrappedDek: Buffer;
  /** KMS key URI of the KEK that wrapped the DEK, e.g. `local:kek-1`. */
  kekId: string;
}

/** Public facts about one certificate, as stored with a version (never key material). */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  /** Uppercase hex, as OpenSSL prints it. */
  serialNumber: string;
  fingerprintSha256: string;
  spkiSha256: string;
  notBefore: Date;
  notAfter: Date;
  keyType: 'RSA' | 'EC' | 'Ed25519';
  /** Bits (RSA modulus, EC field size). */
  keySize?: number;
  /** `P-256`, `P-384`, `P-521`. */
  curve?: string;
  signatureAlgorithm: string;
  subjectAltNames: string[];
}

/** A chain certificate as summarised for the API. */
export interface ChainEntry {
  subject: string;
  issuer: string;
  notAfter: Date;
  fingerprintSha256: string;
}

/** One numbered version of an identity. */
export interface IdentityVersion {
  identityId: string;
  tenantId: string;
  version: number;
  summary: CertificateSummary;
  chain: ChainEntry[];
  /** Leaf then intermediates, PEM. Public data. */
  certificatesPem: string;
  secret: SealedSecret;
  createdAt: Date;
  activatedAt?: Date;
}

/** An outbound client identity. */
export interface Identity {
  id: string;
  tenantId: string;
  name: string;
  activeVersion: number;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  deletedAt?: Date;
}

export type MatchKind = 'exact' | 'prefix' | 'any';

/** (tenant, service, URL match) → identity. */
export interface Mapping {
  id: string;
  tenantId: string;
  name: string;
  service: string;
  url: string;
  match: MatchKind;
  identityId: string;
  enabled: boolean;
  deleted: boolean;
  trustAnchorsPem?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface TenantStore {
  /** @throws AppError `tenant_exists` */
  createTenant(tenant: Tenant): Promise<void>;
  getTenant(tenantId: string): Promise<Tenant | undefined>;
  listTenants(): Promise<Tenant[]>;
  createApiKey(tenantId: string, key: ApiKey): Promise<void>;
  /** Sets `revokedAt`; false when the key does not exist in this tenant. */
  revokeApiKey(tenantId: string, keyId: string, at: Date): Promise<boolean>;
  /** The unrevoked key with this token hash, any tenant (authentication looks it up). */
  findApiKeyByHash(tokenSha256: string): Promise<ApiKey | undefined>;
}

export interface IdentityStore {
  /** Inserts the identity and its first version (already active) in one transaction. */
  createIdentity(tenantId: string, identity: Identity, first: IdentityVersion): Promise<void>;
  getIdentity(tenantId: string, identityId: string): Promise<Identity | undefined>;
  /** Not deleted, ordered by createdAt then id. */
  listIdentities(tenantId: string): Promise<Identity[]>;
  listVersions(tenantId: string, identityId: string): Promise<IdentityVersion[]>;
  getVersion(tenantId: string, identityId: string, version: number): Promise<IdentityVersion | undefined>;
  /** The next version number is computed inside the transaction; returns it. */
  addVersion(
    tenantId: string,
    identityId: string,
    make: (version: number) => IdentityVersion | Promise<IdentityVersion>,
    activate: boolean,
    at: Date,
  ): Promise<number>;
  /** Atomically points the identity at `version` and stamps `activatedAt`. */
  activateVersion(tenantId: string, identityId: string, version: number, at: Date): Promise<void>;
  softDeleteIdentity(tenantId: string, identityId: string, at: Date): Promise<void>;
  /** Renames and/or disables a live identity. */
  updateIdentity(
    tenantId: string,
    identityId: string,
    changes: { name?: string; disabled?: boolean },
    at: Date,
  ): Promise<void>;
}

export interface MappingStore {
  createMapping(tenantId: string, mapping: Mapping): Promise<void>;
  getMapping(tenantId: string, mappingId: string): Promise<Mapping | undefined>;
  /** Includes deleted ones only when asked. */
  listMappings(tenantId: string, options?: { includeDeleted?: boolean }): Promise<Mapping[]>;
  updateMapping(tenantId: string, mapping: Mapping): Promise<void>;
  /** Enabled, not deleted mappings that reference the identity. */
  countActiveMappingsForIdentity(tenantId: string, identityId: string): Promise<number>;
}

/** Small key/value facts about the deployment (KEK check value, schema facts). */
export interface MetaStore {
  getMeta(key: string): Promise<Buffer | undefined>;
  setMeta(key: string, value: Buffer): Promise<void>;
  /** Monotonic counter bumped by every write; other processes poll it to refresh caches. */
  getRevision(): Promise<number>;
}

export interface Store extends TenantStore, IdentityStore, MappingStore, MetaStore {
  /** `sqlite` or `postgres`. */
  readonly dialect: 'sqlite' | 'postgres';
  /** True when the database already holds Twoway tables with data (used before migrating). */
  hasData(): Promise<boolean>;
  migrate(): Promise<void>;
  /** A cheap round trip for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
