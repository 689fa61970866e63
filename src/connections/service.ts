import type { Static } from '@sinclair/typebox';
import { presentationRefusal } from '../certificates/status.js';
import { AppError } from '../errors/app-error.js';
import { HOP_BY_HOP } from '../forward/proxy.js';
import type { IdentityService } from '../identities/service.js';
import { open, seal } from '../kms/envelope.js';
import type { Kms } from '../kms/types.js';
import { checkTrustAnchors } from '../mappings/service.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { type Collection, everyItem, viewPage } from '../shared/paging.js';
import { quotaLimit } from '../shared/quotas.js';
import type {
  Connection,
  ConnectionAuthSettings,
  ConnectionAuthType,
  ConnectionStore,
  PageRequest,
  SealedSecret,
} from '../store/index.js';
import type { TenantService } from '../tenants/service.js';
import type {
  AuthBody,
  ConnectionSchema,
  CreateConnectionBody,
  PatchConnectionBody,
  UNAVAILABLE_REASONS,
} from './schemas.js';
import { checkedHttpsUrl, normaliseBaseUrl } from './target.js';

/** A connection as the API shows it (API.md "Connection"); never a secret, only `auth.secretSet`. */
export type ConnectionView = Static<typeof ConnectionSchema>;
/** `POST .../connections`. */
export type ConnectionInput = Static<typeof CreateConnectionBody>;
/** `PATCH .../connections/{id}`: any field; a secret is replaced only when sent. */
export type ConnectionPatch = Static<typeof PatchConnectionBody>;
/** Why a connection's client certificate cannot be presented. */
export type UnavailableReason = (typeof UNAVAILABLE_REASONS)[number];
type AuthInput = Static<typeof AuthBody>;

/** Whether a connection's client certificate can be presented now (the greyed-out switch). */
export interface Availability {
  available: boolean;
  unavailableReason?: UnavailableReason;
}

/**
 * Associated data binding a sealed connection secret to its row: tenant, connection id and secret
 * version. A ciphertext copied to another connection, another tenant or an older version of the
 * same row does not decrypt (kms/envelope.ts).
 */
export function connectionSecretAad(tenantId: string, connectionId: string, secretVersion: number): Buffer {
  return Buffer.from(`twoway/v1/connection-secret/${tenantId}/${connectionId}/${secretVersion}`, 'utf8');
}

/**
 * Field names a connection may not set: hop-by-hop fields (RFC 9110 §7.6.1, never forwarded), what
 * undici derives from the request (`host`, `content-length`, `expect`) and, checked apart, Twoway's
 * own `twoway-*` fields.
 */
const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP, 'host', 'content-length', 'expect']);

/** What Node accepts in a field value (RFC 9110 §5.5: no CR, LF or other controls but HTAB). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function invalid(detail: string): AppError {
  return new AppError('connection_invalid', detail);
}

/** The type, non-secret settings and (when sent) secret of an `auth` body, checked. */
interface ParsedAuth {
  type: ConnectionAuthType;
  settings: ConnectionAuthSettings;
  /** The password, header value or client secret the body carries; never stored in plaintext. */
  secret: string | undefined;
}

/**
 * Checks an `auth` body beyond its schema: RFC 7617 user ids without `:`, a header name Twoway may
 * set and a value Node can send, an https token URL without fragment (RFC 6749 §3.2).
 * @throws AppError `connection_invalid`, `forward_destination_blocked` (token URL)
 */
function parseAuth(auth: AuthInput, allowPrivate: boolean): ParsedAuth {
  switch (auth.type) {
    case 'none':
      return { type: 'none', settings: {}, secret: undefined };
    case 'basic':
      if (auth.username.includes(':') || !FIELD_VALUE.test(auth.username)) {
        throw invalid('A Basic username must not contain ":" or control characters (RFC 7617).');
      }
      return { type: 'basic', settings: { username: auth.username }, secret: auth.password };
    case 'header': {
      const lower = auth.headerName.toLowerCase();
      if (FORBIDDEN_HEADERS.has(lower) || lower.startsWith('twoway-')) {
        throw invalid(`A connection cannot set the ${auth.headerName} header.`);
      }
      if (auth.headerValue !== undefined && !FIELD_VALUE.test(auth.headerValue)) {
        throw invalid('The header value must not contain line breaks or control characters.');
      }
      return { type: 'header', settings: { headerName: auth.headerName }, secret: auth.headerValue };
    }
    case 'oauth2_client_credentials': {
      const tokenUrl = checkedHttpsUrl(auth.tokenUrl, 'tokenUrl', allowPrivate);
      if (tokenUrl.hash !== '') throw invalid('The tokenUrl must not have a fragment (RFC 6749 §3.2).');
      const settings: ConnectionAuthSettings = {
        tokenUrl: tokenUrl.href,
        clientId: auth.clientId,
        clientAuthentication: auth.clientAuthentication,
      };
      if (auth.scope !== undefined && auth.scope !== '') settings.scope = auth.scope;
      if (auth.audience !== undefined && auth.audience !== '') settings.audience = auth.audience;
      return { type: 'oauth2_client_credentials', settings, secret: auth.clientSecret };
    }
  }
}

/** True when the auth type sends a secret (`tls_client_auth` sends only `client_id`). */
function needsSecret(type: ConnectionAuthType, settings: ConnectionAuthSettings): boolean {
  if (type === 'basic' || type === 'header') return true;
  return type === 'oauth2_client_credentials' && settings.clientAuthentication !== 'tls_client_auth';
}

export interface ConnectionServiceDeps {
  store: ConnectionStore;
  kms: Kms;
  clock: Clock;
  changes: ChangeBus;
  /** The active version and status of an identity (through the identities service). */
  identities: Pick<IdentityService, 'getRuntimeIdentity'>;
  /** The tenant's default identity. */
  tenants: Pick<TenantService, 'getTenant'>;
  /** TWOWAY_FORWARD_ALLOW_PRIVATE: base and token URLs may then be loopback/private IP literals. */
  allowPrivate: boolean;
  /** Most connections per tenant (TWOWAY_QUOTA_CONNECTIONS); no quota when absent. */
  quota?: number;
}

/**
 * Connections: saved external API requests (API.md "Connections"). The auth type's secret (Basic
 * password, header value, OAuth client secret) is sealed with envelope encryption (AAD: tenant,
 * connection, secret version) before it reaches the store; it is write-only: no view, log, audit
 * entry or error holds it, the view says `secretSet`. The client-certificate switch can be turned on
 * only while the identity it would present (its own, else the tenant's default) is usable; every
 * view says whether it is (`available`, `unavailableReason`).
 */
export class ConnectionService {
  readonly #deps: ConnectionServiceDeps;

  constructor(deps: ConnectionServiceDeps) {
    this.#deps = deps;
  }

  /**
   * @throws AppError `connection_invalid`, `connection_exists`, `forward_destination_blocked`,
   *   `invalid_trust_anchors`, `trust_anchors_too_large`, `not_found` (identity),
   *   `client_certificate_unavailable`, `quota_exceeded` (the tenant has its quota of connections;
   *   counted in the store's write transaction)
   */
  async create(tenantId: string, input: ConnectionInput): Promise<ConnectionView> {
    const auth = parseAuth(input.auth ?? { type: 'none' }, this.#deps.allowPrivate);
    const now = this.#deps.clock.now();
    const id = newId('con');
    const connection: Connection = {
      id,
      tenantId,
      name: checkName(input.name),
      baseUrl: normaliseBaseUrl(input.baseUrl, this.#deps.allowPrivate),
      authType: auth.type,
      auth: auth.settings,
      secretVersion: 1,
      clientCertificate: { enabled: input.clientCertificate?.enabled ?? false },
      enabled: input.enabled ?? true,
      createdAt: now,
      updatedAt: now,
    };
    const identityId = input.clientCertificate?.identityId;
    if (identityId !== undefined) connection.clientCertificate.identityId = identityId;
    if (input.trustAnchorsPem) connection.trustAnchorsPem = checkTrustAnchors(input.trustAnchorsPem);
    await this.#checkClientCertificate(tenantId, connection, undefined);
    if (auth.secret !== undefined) connection.secret = await this.#seal(connection, auth.secret);
    checkComplete(connection);
    await this.#deps.store.createConnection(
      tenantId,
      connection,
      quotaLimit(
        this.#deps.quota,
        'connections in this tenant',
        'TWOWAY_QUOTA_CONNECTIONS',
        'delete one first.',
      ),
    );
    await this.#announce(connection);
    return this.#view(connection, await this.#defaultIdentityId(tenantId));
  }

  /** @throws AppError `not_found`, and the codes of {@link create} */
  async update(tenantId: string, connectionId: string, patch: ConnectionPatch): Promise<ConnectionView> {
    const current = await this.#require(tenantId, connectionId);
    const next: Connection = {
      ...current,
      clientCertificate: { ...current.clientCertificate },
      updatedAt: this.#deps.clock.now(),
    };
    if (patch.name !== undefined) next.name = checkName(patch.name);
    if (patch.baseUrl !== undefined) next.baseUrl = normaliseBaseUrl(patch.baseUrl, this.#deps.allowPrivate);
    if (patch.enabled !== undefined) next.enabled = patch.enabled;
    if (patch.trustAnchorsPem === null || patch.trustAnchorsPem === '') delete next.trustAnchorsPem;
    else if (patch.trustAnchorsPem !== undefined)
      next.trustAnchorsPem = checkTrustAnchors(patch.trustAnchorsPem);
    const cc = patch.clientCertificate;
    if (cc?.enabled !== undefined) next.clientCertificate.enabled = cc.enabled;
    if (cc?.identityId === null) delete next.clientCertificate.identityId;
    else if (cc?.identityId !== undefined) next.clientCertificate.identityId = cc.identityId;
    let secret: string | undefined;
    if (patch.auth !== undefined) {
      const auth = parseAuth(patch.auth, this.#deps.allowPrivate);
      // Another type's secret means nothing for this one: it goes, and the new type needs its own.
      if (auth.type !== current.authType) {
        delete next.secret;
        next.secretVersion = current.secretVersion + 1;
      }
      next.authType = auth.type;
      next.auth = auth.settings;
      secret = auth.secret;
    }
    await this.#checkClientCertificate(tenantId, next, current);
    if (secret !== undefined) {
      next.secretVersion = current.secretVersion + 1;
      next.secret = await this.#seal(next, secret);
    }
    checkComplete(next);
    if (!(await this.#deps.store.updateConnection(tenantId, next))) {
      throw new AppError('not_found', 'No such connection.');
    }
    await this.#announce(next);
    return this.#view(next, await this.#defaultIdentityId(tenantId));
  }

  /** Deletes the connection and its sealed secret. @throws AppError `not_found` */
  async remove(tenantId: string, connectionId: string): Promise<void> {
    if (!(await this.#deps.store.deleteConnection(tenantId, connectionId))) {
      throw new AppError('not_found', 'No such connection.');
    }
    await this.#deps.changes.emit({ tenantId, kind: 'connection', id: connectionId });
  }

  /** @throws AppError `not_found` */
  async get(tenantId: string, connectionId: string): Promise<ConnectionView> {
    const connection = await this.#require(tenantId, connectionId);
    return this.#view(connection, await this.#defaultIdentityId(tenantId));
  }

  /** One page of the tenant's connections, oldest first. @throws AppError `invalid_cursor` */
  async list(tenantId: string, request: PageRequest): Promise<Collection<ConnectionView>> {
    const page = await this.#deps.store.listConnections(tenantId, request);
    const defaultIdentityId = await this.#defaultIdentityId(tenantId);
    // One availability per identity, however many connections of the page present it.
    const seen = new Map<string, Promise<Availability>>();
    return viewPage(page, (connections) =>
      Promise.all(connections.map((c) => this.#view(c, defaultIdentityId, seen))),
    );
  }

  /** Every connection of the tenant, with its sealed secret, for the runtime (forward/connections.ts). */
  listForRuntime(tenantId: string): Promise<Connection[]> {
    return everyItem((request) => this.#deps.store.listConnections(tenantId, request));
  }

  /**
   * The plaintext secret of a connection, for the runtime only; undefined when it has none.
   * @throws KmsError `unwrap_failed` when the ciphertext does not belong to this row.
   */
  async openSecret(connection: Connection): Promise<string | undefined> {
    if (connection.secret === undefined) return undefined;
    const aad = connectionSecretAad(connection.tenantId, connection.id, connection.secretVersion);
    const plaintext = await open(this.#deps.kms, connection.secret, aad);
    try {
      return plaintext.toString('utf8');
    } finally {
      plaintext.fill(0);
    }
  }

  /**
   * Whether the identity a connection would present (`identityId`, else the tenant's default
   * `defaultIdentityId`) can be presented now: it exists, is not deleted or disabled, and its active
   * version is within notBefore..notAfter.
   */
  async availability(
    tenantId: string,
    identityId: string | undefined,
    defaultIdentityId: string | undefined,
  ): Promise<Availability> {
    const presented = identityId ?? defaultIdentityId;
    if (presented === undefined) return { available: false, unavailableReason: 'no_identity' };
    const runtime = await this.#deps.identities.getRuntimeIdentity(tenantId, presented);
    if (runtime === undefined) return { available: false, unavailableReason: 'no_identity' };
    const refusal = presentationRefusal(
      runtime.identity.disabled,
      runtime.active.summary,
      this.#deps.clock.now().getTime(),
    );
    return refusal === undefined
      ? { available: true }
      : { available: false, unavailableReason: refusal.code };
  }

  /**
   * The switch may be on only with a usable identity: checked when a request turns it on or changes
   * the identity it presents (a connection left as it was is not refused for an identity that expired
   * since; its forwards are). A named identity must exist in the tenant.
   * @throws AppError `not_found`, `client_certificate_unavailable`, `connection_invalid`
   */
  async #checkClientCertificate(
    tenantId: string,
    next: Connection,
    current: Connection | undefined,
  ): Promise<void> {
    const { enabled, identityId } = next.clientCertificate;
    if (next.auth.clientAuthentication === 'tls_client_auth' && !enabled) {
      throw invalid('tls_client_auth authenticates with the client certificate: turn the switch on.');
    }
    if (identityId !== undefined && identityId !== current?.clientCertificate.identityId) {
      if ((await this.#deps.identities.getRuntimeIdentity(tenantId, identityId)) === undefined) {
        throw new AppError('not_found', 'No such identity in this tenant.');
      }
    }
    const turnedOn = enabled && current?.clientCertificate.enabled !== true;
    const changed = enabled && identityId !== current?.clientCertificate.identityId;
    if (!turnedOn && !changed) return;
    const availability = await this.availability(
      tenantId,
      identityId,
      await this.#defaultIdentityId(tenantId),
    );
    if (!availability.available) {
      throw new AppError('client_certificate_unavailable', unavailableDetail(availability.unavailableReason));
    }
  }

  async #seal(connection: Connection, secret: string): Promise<SealedSecret> {
    const plaintext = Buffer.from(secret, 'utf8');
    try {
      const aad = connectionSecretAad(connection.tenantId, connection.id, connection.secretVersion);
      return await seal(this.#deps.kms, plaintext, aad);
    } finally {
      plaintext.fill(0);
    }
  }

  async #require(tenantId: string, connectionId: string): Promise<Connection> {
    const connection = await this.#deps.store.getConnection(tenantId, connectionId);
    if (connection === undefined) throw new AppError('not_found', 'No such connection.');
    return connection;
  }

  async #defaultIdentityId(tenantId: string): Promise<string | undefined> {
    return (await this.#deps.tenants.getTenant(tenantId))?.defaultIdentityId;
  }

  #announce(connection: Connection): Promise<void> {
    return this.#deps.changes.emit({ tenantId: connection.tenantId, kind: 'connection', id: connection.id });
  }

  async #view(
    c: Connection,
    defaultIdentityId: string | undefined,
    seen = new Map<string, Promise<Availability>>(),
  ): Promise<ConnectionView> {
    const presented = c.clientCertificate.identityId ?? defaultIdentityId ?? '';
    let availability = seen.get(presented);
    if (availability === undefined) {
      availability = this.availability(c.tenantId, c.clientCertificate.identityId, defaultIdentityId);
      seen.set(presented, availability);
    }
    return connectionView(c, await availability);
  }
}

/** The detail of `client_certificate_unavailable` for a reason. */
export function unavailableDetail(reason: UnavailableReason | undefined): string {
  switch (reason) {
    case 'identity_expired':
      return 'The identity this connection presents has expired; upload a new version.';
    case 'identity_disabled':
      return 'The identity this connection presents is disabled.';
    case 'identity_not_yet_valid':
      return 'The identity this connection presents is not valid yet (notBefore).';
    default:
      return 'There is no identity to present: upload one, or set the tenant default identity.';
  }
}

/** Names travel in `Twoway-Connection`, which also takes ids: a name may not look like one. */
function checkName(name: string): string {
  if (name.startsWith('con_'))
    throw invalid('A connection name must not start with "con_" (connection ids do).');
  return name;
}

/** @throws AppError `connection_invalid` when the auth type needs a secret and none is stored. */
function checkComplete(c: Connection): void {
  if (needsSecret(c.authType, c.auth) && c.secret === undefined) {
    const field =
      c.authType === 'basic' ? 'password' : c.authType === 'header' ? 'headerValue' : 'clientSecret';
    throw invalid(`This auth type needs auth.${field}.`);
  }
}

/** The API view of a connection: settings and `secretSet`, never the secret. */
export function connectionView(c: Connection, availability: Availability): ConnectionView {
  return {
    id: c.id,
    tenant: c.tenantId,
    name: c.name,
    baseUrl: c.baseUrl,
    auth: { type: c.authType, ...c.auth, secretSet: c.secret !== undefined },
    clientCertificate: {
      enabled: c.clientCertificate.enabled,
      ...(c.clientCertificate.identityId !== undefined ? { identityId: c.clientCertificate.identityId } : {}),
      ...availability,
    },
    ...(c.trustAnchorsPem !== undefined ? { trustAnchorsPem: c.trustAnchorsPem } : {}),
    enabled: c.enabled,
    createdAt: c.createdAt.toISOString(),
    updatedAt: c.updatedAt.toISOString(),
  };
}
