/**
 * The runtime side of connections: which connection a `Twoway-Connection` names, where the request
 * may go, which identity it presents, which credential it adds, and OAuth tokens, all answered from
 * memory. A tenant's connections (with their secrets opened once) and its default identity are
 * loaded on first use and dropped when a change to that tenant is announced, as the mapping index
 * does (forward/service.ts); identities, TLS contexts and Agents are the mapping path's own.
 */
import type { Dispatcher } from 'undici';
import type { ConnectionMetrics } from '../connections/metrics.js';
import {
  type AccessToken,
  type ClientCredentialsSettings,
  OAuthTokenError,
  requestClientCredentialsToken,
} from '../connections/oauth.js';
import type { ConnectionService, UnavailableReason } from '../connections/service.js';
import { unavailableDetail } from '../connections/service.js';
import { type CompiledBase, compileBase, connectionTarget } from '../connections/target.js';
import { connectionTokenPrefix, type TokenCache, tokenCacheKey } from '../connections/token-cache.js';
import { AppError } from '../errors/app-error.js';
import type { RuntimeIdentity } from '../identities/service.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Connection } from '../store/index.js';
import type { TenantService } from '../tenants/service.js';
import type { ForwardCredential } from './dispatchers.js';
import { type RuntimeService, trustKeyOf } from './service.js';

/** What one forward through a connection does. */
export interface ConnectionPlan {
  connectionId: string;
  /** The destination, under the connection's base URL. */
  url: URL;
  /** The TLS credential: the presented identity version (or none) and the connection's trust anchors. */
  credential: ForwardCredential;
  /** Identity presented, when one is. */
  identityId: string | undefined;
  /** Request header names dropped (lowercase): the one the connection's credential goes in. */
  dropHeaders: ReadonlySet<string> | undefined;
  /** The connection's credential as `[name, value]` (basic, header); for OAuth see `oauth`. */
  addHeaders: readonly string[] | undefined;
  /** OAuth 2.0 client credentials: the token cache key and the settings, secret included. */
  oauth: { key: string; settings: ClientCredentialsSettings } | undefined;
}

/** A connection made ready for forwards: URL parsed, secret opened and turned into its header. */
interface Prepared {
  base: CompiledBase;
  trust: string;
  dropHeaders: ReadonlySet<string> | undefined;
  addHeaders: readonly string[] | undefined;
  oauth: ClientCredentialsSettings | undefined;
  /** `plan.oauth` by identity version (`''` for none): the token key's HMAC is computed once. */
  oauthByVersion: Map<string, NonNullable<ConnectionPlan['oauth']>>;
}

interface TenantConnections {
  /** By id and by name. */
  byRef: Map<string, Connection>;
  defaultIdentityId: string | undefined;
  /** By connection id: being prepared, or ready (replaced by its value once resolved). */
  prepared: Map<string, Prepared | Promise<Prepared>>;
}

export interface ConnectionRuntimeDeps {
  connections: Pick<ConnectionService, 'listForRuntime' | 'openSecret'>;
  tenants: Pick<TenantService, 'getTenant'>;
  /** Identities and TLS credentials, shared with the mapping path. */
  runtime: Pick<RuntimeService, 'presentable' | 'credential'>;
  tokens: TokenCache;
  changes: ChangeBus;
  metrics: ConnectionMetrics;
  /** TWOWAY_FORWARD_ALLOW_PRIVATE. */
  allowPrivate: boolean;
  /** Deadline of one token request, connect to last byte, in ms. */
  tokenTimeoutMs: number;
}

/** Most tenants whose connections are kept; past it the cache starts again. */
const MAX_CACHED_TENANTS = 100_000;
const AUTHORIZATION: ReadonlySet<string> = new Set(['authorization']);

/**
 * Plans forwards through connections (API.md "Connections", Runtime) and fetches their OAuth tokens.
 *
 * Identity precedence: the request's `Twoway-Identity`, then (switch on) the connection's identity,
 * then the tenant's default identity. A connection whose switch is on never sends without its
 * certificate: an unusable identity is `client_certificate_unavailable` before anything is sent.
 */
export class ConnectionRuntime {
  readonly #deps: ConnectionRuntimeDeps;
  /** By tenant: loading, or loaded (the promise is replaced by its value, so forwards skip an await). */
  readonly #tenants = new Map<string, TenantConnections | Promise<TenantConnections>>();

  constructor(deps: ConnectionRuntimeDeps) {
    this.#deps = deps;
    deps.changes.on(
      (change) => {
        if (change.kind === 'client_certificate' || change.kind === 'api_key') return;
        this.#tenants.delete(change.tenantId);
        if (change.kind === 'connection') {
          deps.tokens.forgetPrefix(connectionTokenPrefix(change.tenantId, change.id));
        }
      },
      () => this.#tenants.clear(),
    );
  }

  /**
   * Settles one forward through the connection `ref` (id or name) of `tenantId` to `forwardUrl`
   * (absolute under its base URL, relative to it, or absent for the base URL itself).
   * @throws AppError `connection_not_found` (404), `connection_disabled` (409),
   *   `forward_url_invalid` (400), `forward_destination_blocked` (403),
   *   `client_certificate_unavailable` (409); with `identityOverride` also `not_found`,
   *   `identity_disabled`, `identity_expired`, `identity_not_yet_valid`.
   */
  async plan(
    tenantId: string,
    ref: string,
    forwardUrl: string | undefined,
    identityOverride: string | undefined,
  ): Promise<ConnectionPlan> {
    const cached = this.#tenants.get(tenantId);
    const snapshot =
      cached === undefined || cached instanceof Promise ? await this.#snapshot(tenantId) : cached;
    const connection = snapshot.byRef.get(ref);
    if (connection === undefined) {
      throw new AppError('connection_not_found', 'No connection of this tenant has this id or name.');
    }
    if (!connection.enabled) throw new AppError('connection_disabled', 'This connection is disabled.');
    const ready = snapshot.prepared.get(connection.id);
    const prepared =
      ready === undefined || ready instanceof Promise ? await this.#prepared(snapshot, connection) : ready;
    const url = connectionTarget(prepared.base, forwardUrl, this.#deps.allowPrivate);
    const identity =
      identityOverride === undefined && !connection.clientCertificate.enabled
        ? undefined
        : await this.#identity(tenantId, connection, snapshot.defaultIdentityId, identityOverride);
    if (identityOverride !== undefined) this.#deps.metrics.identityOverrides.inc({ route: 'connection' });
    const credential = await this.#deps.runtime.credential(
      tenantId,
      identity,
      connection.trustAnchorsPem,
      prepared.trust,
    );
    return {
      connectionId: connection.id,
      url,
      credential,
      identityId: identity?.identity.id,
      dropHeaders: prepared.dropHeaders,
      addHeaders: prepared.addHeaders,
      oauth: prepared.oauth === undefined ? undefined : oauthOf(tenantId, connection.id, prepared, identity),
    };
  }

  /**
   * The access token of an OAuth plan: cached, being fetched, or fetched now over `dispatcher` (the
   * forward's own Agent, so the token endpoint sees the same client certificate and is verified with
   * the same trust anchors, and the SSRF guard applies).
   * @throws OAuthTokenError (`oauth_token_failed`, 502)
   */
  token(plan: ConnectionPlan, dispatcher: Dispatcher): Promise<AccessToken> {
    const oauth = plan.oauth;
    if (oauth === undefined) throw new AppError('internal_error', 'Not an OAuth connection.');
    const { metrics, tokens } = this.#deps;
    return tokens.get(oauth.key, () =>
      requestClientCredentialsToken(oauth.settings, {
        dispatcher,
        timeoutMs: this.#deps.tokenTimeoutMs,
        allowPrivate: this.#deps.allowPrivate,
      }).then(
        (token) => {
          metrics.tokenRequests.inc({ outcome: 'ok' });
          return token;
        },
        (err: unknown) => {
          metrics.tokenRequests.inc({ outcome: err instanceof OAuthTokenError ? err.reason : 'error' });
          throw err;
        },
      ),
    );
  }

  /** The cached access token of an OAuth plan, when there is one (no promise: the forward's fast path). */
  cachedToken(plan: ConnectionPlan): AccessToken | undefined {
    return plan.oauth === undefined ? undefined : this.#deps.tokens.cached(plan.oauth.key);
  }

  /** The API answered 401 to `token` (RFC 6750 §3.1): the next forward fetches a new one. */
  rejected(plan: ConnectionPlan, token: AccessToken): void {
    if (plan.oauth !== undefined) this.#deps.tokens.invalidate(plan.oauth.key, token.accessToken);
  }

  /** The identity to present, by precedence (see the class comment); undefined for none. */
  async #identity(
    tenantId: string,
    connection: Connection,
    defaultIdentityId: string | undefined,
    identityOverride: string | undefined,
  ): Promise<RuntimeIdentity | undefined> {
    const { runtime } = this.#deps;
    if (identityOverride !== undefined) return runtime.presentable(tenantId, identityOverride);
    if (!connection.clientCertificate.enabled) return undefined;
    const identityId = connection.clientCertificate.identityId ?? defaultIdentityId;
    if (identityId === undefined) throw unavailable('no_identity');
    try {
      return await runtime.presentable(tenantId, identityId);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.code === 'not_found') throw unavailable('no_identity');
      if (
        err.code === 'identity_disabled' ||
        err.code === 'identity_expired' ||
        err.code === 'identity_not_yet_valid'
      ) {
        throw unavailable(err.code);
      }
      throw err;
    }
  }

  #snapshot(tenantId: string): Promise<TenantConnections> {
    const cached = this.#tenants.get(tenantId);
    if (cached) return Promise.resolve(cached);
    const loading = Promise.all([
      this.#deps.connections.listForRuntime(tenantId),
      this.#deps.tenants.getTenant(tenantId),
    ]).then(([connections, tenant]) => {
      const byRef = new Map<string, Connection>();
      // Ids first: a name cannot start with `con_`, so it never hides an id.
      for (const c of connections) byRef.set(c.name, c);
      for (const c of connections) byRef.set(c.id, c);
      return { byRef, defaultIdentityId: tenant?.defaultIdentityId, prepared: new Map() };
    });
    // A change announced while this loads deletes the entry, so a stale load is never kept.
    if (this.#tenants.size >= MAX_CACHED_TENANTS) this.#tenants.clear();
    this.#tenants.set(tenantId, loading);
    loading.then(
      (loaded) => {
        if (this.#tenants.get(tenantId) === loading) this.#tenants.set(tenantId, loaded);
      },
      () => this.#tenants.delete(tenantId),
    );
    return loading;
  }

  #prepared(snapshot: TenantConnections, connection: Connection): Promise<Prepared> {
    const found = snapshot.prepared.get(connection.id);
    if (found !== undefined) return Promise.resolve(found);
    const preparing = this.#prepare(connection);
    snapshot.prepared.set(connection.id, preparing);
    preparing.then(
      (ready) => {
        if (snapshot.prepared.get(connection.id) === preparing) snapshot.prepared.set(connection.id, ready);
      },
      () => snapshot.prepared.delete(connection.id),
    );
    return preparing;
  }

  /** Opens the secret once and turns it into what every forward adds. */
  async #prepare(connection: Connection): Promise<Prepared> {
    const secret = await this.#deps.connections.openSecret(connection);
    const prepared: Prepared = {
      base: compileBase(connection.baseUrl),
      trust: trustKeyOf(connection.trustAnchorsPem),
      dropHeaders: undefined,
      addHeaders: undefined,
      oauth: undefined,
      oauthByVersion: new Map(),
    };
    const { auth } = connection;
    switch (connection.authType) {
      case 'basic':
        // RFC 7617 §2: user-id ":" password, UTF-8, base64.
        prepared.dropHeaders = AUTHORIZATION;
        prepared.addHeaders = [
          'Authorization',
          `Basic ${Buffer.from(`${auth.username ?? ''}:${secret ?? ''}`, 'utf8').toString('base64')}`,
        ];
        break;
      case 'header': {
        const name = auth.headerName ?? '';
        prepared.dropHeaders = new Set([name.toLowerCase()]);
        prepared.addHeaders = [name, secret ?? ''];
        break;
      }
      case 'oauth2_client_credentials':
        prepared.dropHeaders = AUTHORIZATION;
        prepared.oauth = {
          tokenUrl: auth.tokenUrl ?? '',
          clientId: auth.clientId ?? '',
          clientAuthentication: auth.clientAuthentication ?? 'client_secret_basic',
          ...(secret !== undefined ? { clientSecret: secret } : {}),
          ...(auth.scope !== undefined ? { scope: auth.scope } : {}),
          ...(auth.audience !== undefined ? { audience: auth.audience } : {}),
        };
        break;
      case 'none':
        break;
    }
    return prepared;
  }
}

/**
 * The OAuth part of a plan for the identity version presented (none: `no-certificate`): a
 * certificate-bound token (RFC 8705 §3) works only with the version it was bound to, so each version
 * has its own token key. Made once per version and connection load.
 */
function oauthOf(
  tenantId: string,
  connectionId: string,
  prepared: Prepared,
  identity: RuntimeIdentity | undefined,
): ConnectionPlan['oauth'] {
  const settings = prepared.oauth;
  if (settings === undefined) return undefined;
  const identityVersion = identity && `${identity.identity.id}@${identity.active.version}`;
  let oauth = prepared.oauthByVersion.get(identityVersion ?? '');
  if (oauth === undefined) {
    oauth = { settings, key: tokenCacheKey({ tenantId, connectionId, identityVersion, settings }) };
    prepared.oauthByVersion.set(identityVersion ?? '', oauth);
  }
  return oauth;
}

function unavailable(reason: UnavailableReason): AppError {
  return new AppError('client_certificate_unavailable', unavailableDetail(reason));
}
