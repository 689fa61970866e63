/**
 * Store interfaces: one per aggregate, `tenantId` first on every method, domain types out. Each is
 * implemented over Kysely in its own file (tenants.ts, identities.ts, mappings.ts, ...), serving
 * SQLite and PostgreSQL from the same queries; kysely-store.ts composes them into one {@link Store}.
 * Callers outside store/ import these types from store/index.ts.
 * Driver errors never escape: unique violations become AppError codes (`tenant_exists`).
 * Instants are `Date` values here and RFC 3339 strings on the wire.
 */

import type { CertificateSummary, ChainEntry } from '../certificates/summary.js';
import type { Page, PageRequest } from '../shared/paging.js';
import type { QuotaLimit } from '../shared/quotas.js';

// Pages (shared/paging.ts) and quotas (shared/quotas.ts), as the list and create methods take them.
export type { Page, PageRequest, QuotaLimit };

import type { BackupStore, LifecycleStore, SealedKeyStore } from './lifecycle-types.js';
import type { PeopleStore } from './people-types.js';

export type * from './lifecycle-types.js';
export type * from './people-types.js';

/** A tenant: the isolation boundary. */
export interface Tenant {
  id: string;
  name: string;
  createdAt: Date;
  /**
   * Inbound mTLS at the edge, as the operator switched it; absent while the tenant follows
   * `TWOWAY_EDGE_DEFAULT_ENABLED`.
   */
  edgeEnabled?: boolean;
  /**
   * The identity presented where nothing more specific is named ("domain level": a connection with
   * its client-certificate switch on and no identity of its own); absent when the tenant has none.
   */
  defaultIdentityId?: string;
}

/** A tenant API key; only the SHA-256 of the secret is kept. */
export interface ApiKey {
  id: string;
  tenantId: string;
  /** Display name, e.g. `billing backend`. */
  name: string;
  /** Role names (built-in or the tenant's custom roles); what the key may do is their union. */
  roles: string[];
  /** SHA-256 of the whole bearer token, lowercase hex. */
  tokenSha256: string;
  createdAt: Date;
  revokedAt?: Date;
  /** When the key last authenticated a request (recorded at most once a minute). */
  lastUsedAt?: Date;
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

// Public facts about one certificate (never key material) and one chain entry, as stored with a
// version or client certificate: one definition, in certificates/.
export type { CertificateSummary, ChainEntry };

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
  /** When the lifecycle scheduler is to activate this version; cleared once it is active. */
  activateAt?: Date;
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
  /**
   * Sets (or, with undefined, clears) the tenant's default identity; false when the tenant does not
   * exist. @throws AppError `not_found` when `identityId` is not a live identity of this tenant.
   */
  setDefaultIdentity(tenantId: string, identityId: string | undefined): Promise<boolean>;
  getTenant(tenantId: string): Promise<Tenant | undefined>;
  /** Switches the edge for the tenant; false when the tenant does not exist. */
  setEdgeEnabled(tenantId: string, enabled: boolean): Promise<boolean>;
  /** Oldest first (createdAt, then id). @throws AppError `invalid_cursor` */
  listTenants(request: PageRequest): Promise<Page<Tenant>>;
  /**
   * Inserts the key; its custom roles must exist (checked in the same write transaction).
   * @throws AppError `unknown_role`, `not_found` (no such tenant)
   */
  createApiKey(tenantId: string, key: ApiKey): Promise<void>;
  /** The unrevoked key `keyId` of the tenant. */
  getApiKey(tenantId: string, keyId: string): Promise<ApiKey | undefined>;
  /** Unrevoked keys ordered by id, after `afterId` when given, at most `limit`. */
  listApiKeys(tenantId: string, page: { afterId?: string; limit: number }): Promise<ApiKey[]>;
  /** Records `lastUsedAt` without bumping the revision (bookkeeping). */
  touchApiKey(tenantId: string, keyId: string, at: Date): Promise<void>;
  /** Sets `revokedAt`; false when the key does not exist in this tenant. */
  revokeApiKey(tenantId: string, keyId: string, at: Date): Promise<boolean>;
  /** The unrevoked key with this token hash, any tenant (authentication looks it up). */
  findApiKeyByHash(tokenSha256: string): Promise<ApiKey | undefined>;
}

/** A version waiting for its scheduled activation. */
export interface DueActivation {
  tenantId: string;
  identityId: string;
  version: number;
  activateAt: Date;
}

export interface IdentityStore {
  /**
   * Inserts the identity and its first version (already active) in one transaction; the identity
   * becomes the tenant's default identity when the tenant has none. With `quota`, only while fewer
   * live identities exist.
   * @throws AppError `quota_exceeded`
   */
  createIdentity(
    tenantId: string,
    identity: Identity,
    first: IdentityVersion,
    quota?: QuotaLimit,
  ): Promise<void>;
  getIdentity(tenantId: string, identityId: string): Promise<Identity | undefined>;
  /** Not deleted, ordered by createdAt then id. @throws AppError `invalid_cursor` */
  listIdentities(tenantId: string, request: PageRequest): Promise<Page<Identity>>;
  listVersions(tenantId: string, identityId: string): Promise<IdentityVersion[]>;
  /** The versions of each of `identityIds` (oldest first), in one query; absent ids map to `[]`. */
  listVersionsOfIdentities(tenantId: string, identityIds: string[]): Promise<Map<string, IdentityVersion[]>>;
  getVersion(tenantId: string, identityId: string, version: number): Promise<IdentityVersion | undefined>;
  /**
   * The next version number is computed inside the transaction; returns it. With `quota`, only while
   * the identity has fewer versions. @throws AppError `quota_exceeded`
   */
  addVersion(
    tenantId: string,
    identityId: string,
    make: (version: number) => IdentityVersion | Promise<IdentityVersion>,
    activate: boolean,
    at: Date,
    quota?: QuotaLimit,
  ): Promise<number>;
  /** Atomically points the identity at `version` and stamps `activatedAt`. */
  activateVersion(tenantId: string, identityId: string, version: number, at: Date): Promise<void>;
  /**
   * Soft-deletes the identity unless enabled, not deleted mappings or enabled connections with the
   * client-certificate switch on name it (checked in the same write transaction); returns their
   * number, 0 when it was deleted or there was nothing to delete. A deleted default identity is no
   * longer the tenant's default.
   */
  softDeleteIdentity(tenantId: string, identityId: string, at: Date): Promise<number>;
  /** Renames and/or disables a live identity. */
  updateIdentity(
    tenantId: string,
    identityId: string,
    changes: { name?: string; disabled?: boolean },
    at: Date,
  ): Promise<void>;
  // Scheduled activations, for the lifecycle scheduler: the two reads span every tenant.
  /** Versions of live identities whose `activateAt` is at or before `now`, any tenant, earliest first. */
  listDueActivations(now: Date): Promise<DueActivation[]>;
  /** Drops a version's pending `activateAt`; false when it had none. Bumps the revision. */
  clearScheduledActivation(tenantId: string, identityId: string, version: number): Promise<boolean>;
  /** The earliest pending activation of a live identity, any tenant, for arming the scheduler's timer. */
  nextActivationAt(): Promise<Date | undefined>;
}

export interface MappingStore {
  /** With `quota`, only while fewer mappings (not deleted) exist. @throws AppError `quota_exceeded` */
  createMapping(tenantId: string, mapping: Mapping, quota?: QuotaLimit): Promise<void>;
  getMapping(tenantId: string, mappingId: string): Promise<Mapping | undefined>;
  /** Oldest first; includes deleted ones only when asked. @throws AppError `invalid_cursor` */
  listMappings(
    tenantId: string,
    request: PageRequest,
    options?: { includeDeleted?: boolean },
  ): Promise<Page<Mapping>>;
  updateMapping(tenantId: string, mapping: Mapping): Promise<void>;
}

/** How a connection authenticates to its remote API (API.md "Connections"). */
export type ConnectionAuthType = 'none' | 'basic' | 'header' | 'oauth2_client_credentials';

/**
 * The non-secret auth settings of a connection; which fields are set depends on the type: `basic`
 * `username`; `header` `headerName`; `oauth2_client_credentials` `tokenUrl`, `clientId`,
 * `clientAuthentication` and optionally `scope`, `audience`.
 */
export interface ConnectionAuthSettings {
  username?: string;
  headerName?: string;
  tokenUrl?: string;
  clientId?: string;
  scope?: string;
  audience?: string;
  clientAuthentication?: 'client_secret_basic' | 'client_secret_post' | 'tls_client_auth';
}

/** A saved external API request: base URL, auth, client-certificate switch, trust anchors. */
export interface Connection {
  id: string;
  tenantId: string;
  /** Unique in the tenant; the runtime finds a connection by id or by name. */
  name: string;
  /** Absolute https URL without query or fragment; requests go to it or below it. */
  baseUrl: string;
  authType: ConnectionAuthType;
  auth: ConnectionAuthSettings;
  /**
   * The auth type's secret (basic password, header value, OAuth client secret), sealed with the
   * tenant, connection id and {@link secretVersion} as associated data; absent when none is set.
   */
  secret?: SealedSecret;
  /** Bumped each time the secret is replaced (part of its associated data). */
  secretVersion: number;
  /** The switch; without `identityId` the tenant's default identity is presented. */
  clientCertificate: { enabled: boolean; identityId?: string };
  trustAnchorsPem?: string;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface ConnectionStore {
  /**
   * With `quota`, only while fewer connections exist (counted in the write transaction).
   * @throws AppError `connection_exists` (the tenant has a connection of this name), `not_found`
   *   (no such tenant, or an enabled connection with the switch on names no live identity of it),
   *   `quota_exceeded`.
   */
  createConnection(tenantId: string, connection: Connection, quota?: QuotaLimit): Promise<void>;
  getConnection(tenantId: string, connectionId: string): Promise<Connection | undefined>;
  /** Ordered by createdAt then id. @throws AppError `invalid_cursor` */
  listConnections(tenantId: string, request: PageRequest): Promise<Page<Connection>>;
  /**
   * Overwrites every field but `id`, `tenantId` and `createdAt`; false when there is no such
   * connection in this tenant. @throws as {@link createConnection}.
   */
  updateConnection(tenantId: string, connection: Connection): Promise<boolean>;
  /** Deletes the row and its sealed secret; false when there was none. */
  deleteConnection(tenantId: string, connectionId: string): Promise<boolean>;
}

/** Where a client certificate came from: uploaded by the tenant (BYOC) or issued by the platform CA. */
export type ClientCertificateSource = 'uploaded' | 'issued';

/** CRL reason codes Twoway records (RFC 5280 §5.3.1). */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation';

/** An inbound client certificate: public certificate only, never a key. */
export interface ClientCertificate {
  id: string;
  tenantId: string;
  name: string;
  source: ClientCertificateSource;
  summary: CertificateSummary;
  /** The leaf certificate, PEM. Public data. */
  certificatePem: string;
  createdAt: Date;
  updatedAt: Date;
  revokedAt?: Date;
  revocationReason?: RevocationReason;
  deletedAt?: Date;
}

/**
 * What the edge's fingerprint index needs of one client certificate, with the store revision of
 * its last change (to apply changes in order and to ask only for newer ones).
 */
export interface ClientCertificateIndexRow {
  id: string;
  tenantId: string;
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  revokedAt?: Date;
  deletedAt?: Date;
  revision: number;
}

/** A revoked issued certificate as the CRL lists it (RFC 5280 §5.1.2.6). */
export interface RevokedSerial {
  /** Uppercase hex. */
  serialNumber: string;
  revokedAt: Date;
  reason?: RevocationReason;
}

/** An issued certificate's revocation state; both fields absent while it is good. */
export interface IssuedCertificateStatus {
  revokedAt?: Date;
  reason?: RevocationReason;
}

/** The current CRL of the platform CA. */
export interface StoredCrl {
  /** CRLNumber (RFC 5280 §5.2.3), monotonic. */
  crlNumber: number;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** Makes a signed CRL from every revoked issued certificate, numbered `crlNumber`. */
export type CrlMaker = (revoked: RevokedSerial[], crlNumber: number) => Promise<Omit<StoredCrl, 'crlNumber'>>;

/** One certificate of the platform CA with its sealed private key. */
export interface PlatformCaCertificate {
  role: 'root' | 'issuing';
  certificatePem: string;
  secret: SealedSecret;
  createdAt: Date;
}

/** The quotas {@link ClientCertificateStore.createClientCertificate} checks in its transaction. */
export interface ClientCertificateQuotas {
  /** Live (not deleted) certificates of the tenant, revoked ones included. */
  live?: QuotaLimit;
  /** Issued certificates (deleted ones too) created at or after `since`; checked for issued ones only. */
  issued?: QuotaLimit & { since: Date };
}

/** Where a CSR waiting for the operator stands (`TWOWAY_CSR_APPROVAL=manual`). */
export type CsrStatus = 'pending' | 'approved' | 'rejected';

/** A CSR submitted under manual approval. Public material only (a CSR holds no secret). */
export interface CsrRequest {
  id: string;
  tenantId: string;
  name: string;
  csrPem: string;
  /** As submitted; absent: the default validity when approved. */
  validityDays?: number;
  status: CsrStatus;
  /** The certificate issued on approval. */
  clientCertificateId?: string;
  /** The operator's reason for a rejection. */
  reason?: string;
  createdAt: Date;
  decidedAt?: Date;
}

/** The operator's decision on a pending CSR. */
export type CsrDecision =
  | { status: 'approved'; at: Date }
  | { status: 'rejected'; at: Date; reason?: string };

export interface CsrRequestStore {
  /** @throws AppError `not_found` (no such tenant) */
  createCsrRequest(tenantId: string, request: CsrRequest): Promise<void>;
  getCsrRequest(tenantId: string, id: string): Promise<CsrRequest | undefined>;
  /**
   * Moves a pending CSR to `decision.status` in one conditional write, so two decisions cannot both
   * win. Undefined when there is no such CSR in this tenant; `false` when it was already decided.
   */
  decideCsrRequest(
    tenantId: string,
    id: string,
    decision: CsrDecision,
  ): Promise<CsrRequest | false | undefined>;
  /** Records the certificate issued for an approved CSR, or (undefined) puts it back to pending. */
  settleCsrRequest(tenantId: string, id: string, clientCertificateId: string | undefined): Promise<void>;
}

export interface ClientCertificateStore {
  /**
   * Inserts a client certificate; the fingerprint must not be registered (and not deleted) in this
   * tenant. Other tenants may hold the same certificate: the edge admits by (fingerprint, tenant of
   * the API key), and registration never tells one tenant about another's.
   * With `quotas`, also only while the tenant has fewer live certificates than `quotas.live.max`
   * and, for an issued one, fewer issued at or after `quotas.issued.since` than `quotas.issued.max`.
   * @throws AppError `client_certificate_exists` (same tenant), `not_found` (no such tenant),
   *   `quota_exceeded`.
   */
  createClientCertificate(
    tenantId: string,
    certificate: ClientCertificate,
    quotas?: ClientCertificateQuotas,
  ): Promise<void>;
  /** The tenant's live (not deleted) certificates, and those issued (deleted ones too) at or after `issuedSince`. */
  countClientCertificates(tenantId: string, issuedSince: Date): Promise<{ live: number; issued: number }>;
  /** Inserts many at once without the friendly duplicate check (bulk import, benchmarks). */
  createClientCertificates(tenantId: string, certificates: ClientCertificate[]): Promise<void>;
  /** Not deleted ones only. */
  getClientCertificate(tenantId: string, id: string): Promise<ClientCertificate | undefined>;
  /** Not deleted, ordered by createdAt then id. @throws AppError `invalid_cursor` */
  listClientCertificates(tenantId: string, request: PageRequest): Promise<Page<ClientCertificate>>;
  /**
   * Sets `revokedAt` and the reason of a live certificate (a second call keeps the first) and, for an
   * issued certificate, stores a new CRL made by `crl` in the same transaction.
   * @returns the certificate after the change; undefined when it does not exist in this tenant.
   */
  revokeClientCertificate(
    tenantId: string,
    id: string,
    at: Date,
    reason: RevocationReason,
    crl: CrlMaker,
  ): Promise<ClientCertificate | undefined>;
  /**
   * Soft-deletes a live certificate; an issued one that is not revoked yet is revoked
   * (`cessationOfOperation`) and the CRL regenerated in the same transaction. False when not found.
   */
  deleteClientCertificate(tenantId: string, id: string, at: Date, crl: CrlMaker): Promise<boolean>;
  /**
   * The live (not deleted) registrations of this fingerprint in every tenant (at most one per
   * tenant), ordered by tenant id: the edge's fallback lookup.
   */
  findClientCertificatesByFingerprint(fingerprintSha256: string): Promise<ClientCertificate[]>;
  /**
   * Index rows changed after store revision `afterRevision`, deleted ones included (pass -1 for
   * everything; `includeDeleted: false` leaves deleted ones out of a full load).
   */
  listClientCertificateChanges(
    afterRevision: number,
    options?: { includeDeleted?: boolean },
  ): Promise<ClientCertificateIndexRow[]>;
  /**
   * The revocation state of the certificate the platform CA issued with serial `serialNumber`
   * (uppercase hex without leading zero octets), deleted ones included (a delete revokes): what its
   * OCSP responder answers. Undefined when no issued certificate has that serial (the CA does not
   * record the edge's own server certificates).
   */
  getIssuedCertificateStatus(serialNumber: string): Promise<IssuedCertificateStatus | undefined>;
}

export interface PlatformCaStore {
  /** Both certificates of the platform CA, or undefined before the first start created them. */
  getPlatformCa(): Promise<{ root: PlatformCaCertificate; issuing: PlatformCaCertificate } | undefined>;
  /** Stores the platform CA unless one exists; false when another process was first. */
  createPlatformCa(root: PlatformCaCertificate, issuing: PlatformCaCertificate): Promise<boolean>;
  /** As {@link getPlatformCa}, for the platform outbound CA (the platform's own identities). */
  getPlatformOutboundCa(): Promise<
    { root: PlatformCaCertificate; issuing: PlatformCaCertificate } | undefined
  >;
  /** As {@link createPlatformCa}, for the platform outbound CA. */
  createPlatformOutboundCa(root: PlatformCaCertificate, issuing: PlatformCaCertificate): Promise<boolean>;
  getCrl(): Promise<StoredCrl | undefined>;
  /** Stores a new CRL made by `crl` from the revoked issued certificates, in one transaction. */
  refreshCrl(crl: CrlMaker): Promise<StoredCrl>;
}

/** Small key/value facts about the deployment (KEK check value, schema facts). */
export interface MetaStore {
  getMeta(key: string): Promise<Buffer | undefined>;
  setMeta(key: string, value: Buffer): Promise<void>;
  /** Monotonic counter bumped by every write; other processes poll it to refresh caches. */
  getRevision(): Promise<number>;
}

export interface Store
  extends TenantStore,
    PeopleStore,
    LifecycleStore,
    IdentityStore,
    MappingStore,
    MetaStore,
    ClientCertificateStore,
    CsrRequestStore,
    PlatformCaStore,
    ConnectionStore,
    SealedKeyStore,
    BackupStore {
  /** `sqlite` or `postgres`. */
  readonly dialect: 'sqlite' | 'postgres';
  /** True when the database already holds Twoway tables with data (used before migrating). */
  hasData(): Promise<boolean>;
  migrate(): Promise<void>;
  /** A cheap round trip for /readyz. */
  ping(): Promise<void>;
  /**
   * PostgreSQL only: calls `handlers` as other processes (and this one) commit writes, within
   * milliseconds (LISTEN/NOTIFY on a dedicated session, re-subscribed after it is lost). Absent on
   * SQLite: poll {@link MetaStore.getRevision}. Close the watch before the store.
   */
  watchRevisions?(handlers: RevisionWatchHandlers): RevisionWatch;
  close(): Promise<void>;
}

/** What {@link Store.watchRevisions} reports. */
export interface RevisionWatchHandlers {
  /** A write transaction that set the revision counter to `revision` committed. */
  onRevision(revision: number): void;
  /** The listening session was lost (`err`); the next attempt is in `retryInMs` milliseconds. */
  onLost?(err: unknown, retryInMs: number): void;
  /** Listening again after a loss: announcements made in between were missed (read the revision). */
  onResubscribed?(): void;
}

/** A running {@link Store.watchRevisions}; `close()` ends its session. */
export interface RevisionWatch {
  close(): Promise<void>;
}
