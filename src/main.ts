import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { CaKeyAlgorithm } from './ca/crypto.js';
import { OcspResponder } from './ca/ocsp.js';
import { PlatformCa } from './ca/platform-ca.js';
import { IdentityParser } from './certificates/index.js';
import { CsrApprovalService } from './client-certificates/approval.js';
import { clientCertificatePolicy } from './client-certificates/policy.js';
import { ClientCertificateService } from './client-certificates/service.js';
import { workerRelay } from './cluster/cluster.js';
import { type Config, listenAddress } from './config/config.js';
import { createConnectionMetrics } from './connections/metrics.js';
import { ConnectionService } from './connections/service.js';
import { TokenCache } from './connections/token-cache.js';
import { type RunningEdge, startEdgeListener } from './edge/start.js';
import { ConnectionRuntime } from './forward/connections.js';
import { DispatcherCache } from './forward/dispatchers.js';
import { registerForwardGauges } from './forward/metrics.js';
import { RuntimeService } from './forward/service.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import { createMetrics, MetricsAccess, type MetricsListener, startMetricsListener } from './http/metrics.js';
import { IdentityService } from './identities/service.js';
import { IdentityTester } from './identity-tests/service.js';
import { makeKekCheck, verifyKekCheck } from './kms/envelope.js';
import { KeyRing } from './kms/key-ring.js';
import { type KekSource, LocalKms, loadLocalKek } from './kms/local/local-kms.js';
import { Pkcs11Kms } from './kms/pkcs11/pkcs11-kms.js';
import type { Kms } from './kms/types.js';
import { DecisionNotifier } from './lifecycle/decisions.js';
import {
  AuditService,
  clientCertificateSource,
  createLifecycle,
  type ExpiringSource,
  identitySource,
  type Lifecycle,
  NotificationSettingsService,
} from './lifecycle/index.js';
import { LifecycleService } from './lifecycle/service.js';
import { MappingService } from './mappings/service.js';
import { PeopleService, rolePermissions } from './people/service.js';
import { SessionService } from './people/sessions.js';
import { PlatformIdentityService } from './platform/service.js';
import { ChangeBus } from './shared/changes.js';
import { type Clock, systemClock } from './shared/clock.js';
import { createLogger } from './shared/logger.js';
import { quotasOf } from './shared/quotas.js';
import { followRevisions } from './shared/revision-follower.js';
import { openStore, type Store } from './store/index.js';
import { EdgeAccess } from './tenants/edge-access.js';
import { TenantService } from './tenants/service.js';

/** A start-up refusal with a message meant for the operator (no secrets in it). */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** The `meta` key of the KEK check value (kms/envelope.ts). */
export const KEK_CHECK = 'kek_check';

/** The store and KMS, opened and checked against each other. */
export interface Backends {
  store: Store;
  kms: Kms;
}

/**
 * Opens the store and the KMS and proves they belong together, before anything is written:
 * a database that already holds data is opened only with the KEK that wrote it (checked with a
 * stored check value); no key file is created for it. Then migrations run.
 * @throws StartupError when the KEK is missing or wrong for this database
 */
export async function openBackends(config: Config, logger?: Logger): Promise<Backends> {
  const store = await openStore(config.databaseUrl, config.dataDir, {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
  });
  try {
    const hasData = await store.hasData();
    const { kms, source } = openKms(config, hasData, logger);
    if (hasData) {
      // A database with data always has its check value (written right after the first
      // migration); without one, no KEK can be proven right, so none is accepted.
      const check = await store.getMeta(KEK_CHECK);
      if (!check || !(await verifyKekCheck(kms, check))) {
        await kms.close();
        throw new StartupError(`The KEK (${source}) does not match this database. Nothing was written.`);
      }
    }
    await store.migrate();
    if (!(await store.getMeta(KEK_CHECK))) await store.setMeta(KEK_CHECK, await makeKekCheck(kms));
    return { store, kms };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * The KMS the configuration names, as a {@link KeyRing}: with TWOWAY_KMS=pkcs11 the token's KEK
 * wraps, and a local KEK still present (TWOWAY_MASTER_KEY or the key file) only unwraps rows that
 * `twoway kms rotate` has not moved yet. The local key file is created only for an empty database.
 * @returns the ring and a description of the wrapping KEK for messages (never key bytes or the PIN)
 * @throws StartupError when no KEK is found, or the token cannot be used
 */
export function openKms(config: Config, hasData: boolean, logger?: Logger): { kms: KeyRing; source: string } {
  const keyFile = join(config.dataDir, 'master.key');
  const localSource = (found: { source: KekSource }) =>
    found.source === 'env' ? 'TWOWAY_MASTER_KEY' : keyFile;
  if (config.kms === 'pkcs11') {
    let token: Pkcs11Kms;
    try {
      token = Pkcs11Kms.open({
        modulePath: config.pkcs11Module ?? '',
        tokenLabel: config.pkcs11TokenLabel ?? '',
        pin: config.pkcs11Pin ?? '',
        keyLabel: config.pkcs11KeyLabel,
      });
    } catch (err) {
      throw new StartupError(
        `The PKCS#11 KMS cannot be opened: ${(err as Error).message}. Nothing was written.`,
      );
    }
    const local = loadLocalKek(config.masterKey, keyFile, false);
    const previous = local ? [new LocalKms(local.kek)] : [];
    local?.kek.fill(0);
    return { kms: new KeyRing(token, previous), source: token.kekId };
  }
  const found = loadLocalKek(config.masterKey, keyFile, !hasData);
  if (!found) {
    throw new StartupError(
      `The database holds data but no KEK was found: set TWOWAY_MASTER_KEY or restore ${keyFile}. Nothing was written.`,
    );
  }
  const kms = new KeyRing(new LocalKms(found.kek));
  found.kek.fill(0);
  if (found.source === 'created') logger?.info({ keyFile }, 'local KEK created');
  return { kms, source: localSource(found) };
}

/** The domain services over a store and a KMS. */
export interface Services {
  changes: ChangeBus;
  tenants: TenantService;
  identities: IdentityService;
  mappings: MappingService;
  /** Notification settings (and the expiry thresholds every status uses). */
  settings: NotificationSettingsService;
  audit: AuditService;
  /** The certificate tester (stores nothing). */
  tester: IdentityTester;
  /** The platform CA (opened on first use; `ensure()` creates it on the very first start). */
  ca: PlatformCa;
  /** The platform CA's OCSP responder (RFC 6960). */
  ocsp: OcspResponder;
  clientCertificates: ClientCertificateService;
  /** CSR submission with the optional approval step (TWOWAY_CSR_APPROVAL). */
  approvals: CsrApprovalService;
  /** The platform's own identities and the platform outbound CA. */
  platform: PlatformIdentityService;
  /** The operator's per-tenant switch for inbound mTLS. */
  edgeAccess: EdgeAccess;
  /** Saved external API requests (connections). */
  connections: ConnectionService;
  /** Identity uploads are read in worker threads; `close()` it with the services. */
  parser: IdentityParser;
  /** Members, roles and API keys with roles. */
  people: PeopleService;
  /** Portal and console links, browser sessions. */
  sessions: SessionService;
}

/**
 * Every kind of certificate the expiry scanner watches, one line each: add a source here when a
 * domain gets certificates (the platform CA and the edge server certificate are not tenant objects
 * and are not scanned yet).
 */
export function expiringSources(services: Services): ExpiringSource[] {
  return [identitySource(services.identities), clientCertificateSource(services.clientCertificates)];
}

/**
 * Builds the domain services over opened backends (no listener, no timer): what `twoway serve` and
 * the CLI share. `clock` defaults to the system clock; `logger` is used by the platform CA.
 */
export function createServices(
  backends: Backends,
  config: Config,
  clock: Clock = systemClock,
  logger?: Logger,
): Services {
  const { store, kms } = backends;
  const quotas = quotasOf(config);
  const changes = new ChangeBus();
  const tenants = new TenantService(store, clock, config.operatorToken, changes, rolePermissions(store));
  const people = new PeopleService({ store, keys: tenants, clock, changes });
  const sessions = new SessionService({
    store,
    people,
    tenants,
    clock,
    options: { idleTimeoutMs: config.sessionIdleTimeoutMs, lifetimeMs: config.sessionLifetimeMs },
  });
  const edgeAccess = new EdgeAccess(store, config.edgeDefaultEnabled, changes);
  const settings = new NotificationSettingsService({
    store,
    kms,
    clock,
    changes,
    allowPrivate: config.forwardAllowPrivate,
    maxTargets: quotas.notificationTargets,
  });
  const parser = new IdentityParser();
  const identities = new IdentityService({
    store,
    kms,
    clock,
    parser,
    changes,
    expiringWithinDays: (tenantId) => settings.firstThresholdDays(tenantId),
    quotas,
  });
  const mappings = new MappingService({
    store,
    clock,
    changes,
    identityExists: (tenantId, identityId) => identities.exists(tenantId, identityId),
    quota: quotas.mappings,
  });
  const audit = new AuditService({ store, clock });
  const tester = new IdentityTester({
    identities,
    parser,
    clock,
    allowPrivate: config.forwardAllowPrivate,
    timeoutMs: config.identityTestTimeoutMs,
  });
  const ca = new PlatformCa({
    store,
    kms,
    clock,
    keyAlgorithm: config.caKeyAlgorithm as CaKeyAlgorithm,
    ...(config.publicUrl !== undefined
      ? {
          crlUrl: publicEndpointOf(config.publicUrl, 'v1/ca/crl'),
          ocspUrl: publicEndpointOf(config.publicUrl, 'v1/ca/ocsp'),
        }
      : {}),
    ...(logger ? { logger: logger.child({ module: 'ca' }) } : {}),
  });
  const clientCertificates = new ClientCertificateService({
    store,
    ca,
    clock,
    policy: clientCertificatePolicy(config),
    quotas,
  });
  // The platform outbound CA: its own root and issuing CA (table platform_outbound_ca), so trusting
  // it admits the platform's identities and nothing issued from a tenant's CSR.
  const outboundCa = new PlatformCa({
    store: {
      getPlatformCa: () => store.getPlatformOutboundCa(),
      createPlatformCa: (root, issuing) => store.createPlatformOutboundCa(root, issuing),
      getPlatformOutboundCa: () => store.getPlatformOutboundCa(),
      createPlatformOutboundCa: (root, issuing) => store.createPlatformOutboundCa(root, issuing),
      getCrl: async () => undefined,
      refreshCrl: () => Promise.reject(new Error('the platform outbound CA keeps no CRL')),
    },
    kms,
    clock,
    keyAlgorithm: config.caKeyAlgorithm as CaKeyAlgorithm,
    names: { root: 'Twoway Platform Outbound Root CA', issuing: 'Twoway Platform Outbound Issuing CA' },
    ...(logger ? { logger: logger.child({ module: 'outbound-ca' }) } : {}),
  });
  const platform = new PlatformIdentityService({ identities, store, outboundCa, clock });
  const approvals = new CsrApprovalService({
    mode: config.csrApproval,
    store,
    clientCertificates,
    notifier: new DecisionNotifier({
      store,
      settings,
      emailEnabled: config.smtpUrl !== undefined,
      changes,
      clock,
    }),
    clock,
  });
  const connections = new ConnectionService({
    store,
    kms,
    clock,
    changes,
    identities,
    tenants,
    allowPrivate: config.forwardAllowPrivate,
    quota: quotas.connections,
  });
  return {
    changes,
    tenants,
    approvals,
    platform,
    identities,
    mappings,
    settings,
    audit,
    tester,
    ca,
    ocsp: new OcspResponder({ issuer: ca, statuses: store, clock }),
    clientCertificates,
    edgeAccess,
    connections,
    parser,
    people,
    sessions,
  };
}

/** A running `twoway serve`. */
export interface Twoway {
  app: HttpApp;
  /** Base URL of the HTTP listener, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Base URL of the inbound mTLS edge listener, e.g. `https://127.0.0.1:8443`. */
  edgeUrl: string;
  edge: RunningEdge;
  /** Base URL of the metrics listener (`TWOWAY_METRICS_LISTEN`), when one runs. */
  metricsUrl?: string;
  services: Services;
  store: Store;
  /** The forward connection pools (one undici Agent per identity version). */
  dispatchers: DispatcherCache;
  /** Expiry scan, notifications, scheduled activation (`lifecycle.scheduler.runOnce()`). */
  lifecycle: Lifecycle;
  close(): Promise<void>;
}

/**
 * Starts the HTTP listener (admin + runtime API) on `config.host:config.httpPort` and watches the
 * store for changes made by other processes (the CLI, other replicas).
 */
export async function startTwoway(
  config: Config,
  // uiRoot: the built web UI (default dist/ui beside the compiled main.js); tests running src/ pass it.
  options: { logger?: Logger; clock?: Clock; clusterWorker?: boolean; uiRoot?: string } = {},
): Promise<Twoway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const backends = await openBackends(config, logger);
  const services = createServices(backends, config, options.clock, logger);
  services.tenants.logger = logger.child({ module: 'tenants' });
  await services.ca.ensure();
  if (options.clusterWorker) {
    services.changes.setRelay(workerRelay((change) => services.changes.applyFromPeer(change)));
    services.changes.onPeerChange(async (change) => {
      if (change.kind === 'api_key') services.tenants.forgetCachedKeys();
    });
  }
  // The lifecycle scheduler rescans the tenant; other workers reload their edge index.
  services.clientCertificates.onChange((tenantId) =>
    services.changes.emit({ tenantId, kind: 'client_certificate', id: '*' }),
  );
  const dispatchers = new DispatcherCache({
    timeouts: {
      connectTimeoutMs: config.forwardConnectTimeoutMs,
      headersTimeoutMs: config.forwardHeadersTimeoutMs,
      bodyTimeoutMs: config.forwardBodyTimeoutMs,
      idleTimeoutMs: config.forwardKeepAliveTimeoutMs,
    },
    allowPrivate: config.forwardAllowPrivate,
    idleAgentTtlMs: config.forwardIdleAgentTtlMs,
  });
  const runtime = new RuntimeService({
    mappings: services.mappings,
    identities: services.identities,
    dispatchers,
    changes: services.changes,
    clock: options.clock ?? systemClock,
  });
  const metrics = createMetrics();
  registerForwardGauges(metrics.registry, dispatchers, runtime);
  const metricsAccess = new MetricsAccess(config.metricsToken, (token) =>
    services.tenants.authenticate(token).then(
      (principal) => principal.kind === 'operator',
      () => false,
    ),
  );
  const clock = options.clock ?? systemClock;
  const connectionMetrics = createConnectionMetrics(metrics.registry);
  const connectionRuntime = new ConnectionRuntime({
    connections: services.connections,
    tenants: services.tenants,
    runtime,
    tokens: new TokenCache({ clock }),
    changes: services.changes,
    metrics: connectionMetrics,
    allowPrivate: config.forwardAllowPrivate,
    // One token request may take as long as the remote API may take to answer headers.
    tokenTimeoutMs: config.forwardHeadersTimeoutMs,
  });
  const lifecycle = createLifecycle({
    store: backends.store,
    tenants: services.tenants,
    identities: services.identities,
    settings: services.settings,
    audit: services.audit,
    changes: services.changes,
    sources: expiringSources(services),
    clock,
    logger,
    registry: metrics.registry,
    integrationOwners: (tenantId) => services.people.integrationOwners(tenantId),
    options: {
      smtpUrl: config.smtpUrl,
      smtpFrom: config.smtpFrom,
      scanIntervalMs: config.lifecycleScanIntervalMs,
      retry: {
        baseMs: config.notificationRetryBaseMs,
        maxMs: config.notificationRetryMaxMs,
        maxAttempts: config.notificationMaxAttempts,
      },
      notificationTimeoutMs: config.notificationTimeoutMs,
      allowPrivate: config.forwardAllowPrivate,
    },
  });
  const app = await buildHttpApp({
    logger,
    audit: services.audit,
    settings: services.settings,
    tester: services.tester,
    lifecycle: new LifecycleService({ store: backends.store, clock }),
    tenants: services.tenants,
    edgeAccess: services.edgeAccess,
    identities: services.identities,
    mappings: services.mappings,
    runtime,
    dispatchers,
    metrics,
    metricsAccess,
    checkReady: () => backends.store.ping(),
    readyTimeoutMs: config.readyTimeoutMs,
    maxUploadBytes: config.maxUploadBytes,
    idleTimeoutMs: config.httpIdleTimeoutMs,
    forwardAllowPrivate: config.forwardAllowPrivate,
    version: packageVersion(),
    // dist/ui, written by `npm run build` next to this file's compiled copy (dist/main.js).
    ui: {
      root: options.uiRoot ?? fileURLToPath(new URL('./ui/', import.meta.url)),
      frameAncestors: config.uiFrameAncestors,
    },
    clientCertificates: services.clientCertificates,
    approvals: services.approvals,
    platform: services.platform,
    ca: services.ca,
    connections: services.connections,
    connectionRuntime,
    connectionMetrics,
    people: {
      service: services.people,
      sessions: services.sessions,
      publicUrl: config.publicUrl,
      sessionLifetimeMs: config.sessionLifetimeMs,
      signInMaxPerMinute: config.sessionSignInMaxPerMinute,
    },
    ocsp: services.ocsp,
  });

  // Other processes (the CLI, other replicas) write to the same store: PostgreSQL announces each
  // write (LISTEN/NOTIFY), and the revision counter is polled as the fallback (SQLite: only that).
  const follower = await followRevisions({
    store: backends.store,
    pollIntervalMs: config.changePollIntervalMs,
    logger,
    onChange: () => {
      services.changes.emitAll();
      services.tenants.forgetCachedKeys();
    },
  });

  let address: string;
  let edge: RunningEdge;
  let metricsListener: MetricsListener | undefined;
  /** Stops everything started so far, in order (the edge only once it listens). */
  const stop = async (startedEdge: RunningEdge | undefined) => {
    await follower.close();
    await metricsListener?.close();
    await startedEdge?.close();
    await lifecycle.close();
    await app.close();
    await dispatchers.close();
    await services.parser.close();
    await backends.store.close();
    await backends.kms.close();
  };
  try {
    address = await app.listen({ host: config.host, port: config.httpPort });
    if (config.metricsListen !== undefined) {
      metricsListener = await startMetricsListener({
        ...listenAddress(config.metricsListen),
        registry: metrics.registry,
        access: metricsAccess,
        logger: logger.child({ module: 'metrics' }),
      });
    }
    edge = await startEdgeListener({
      config,
      ca: services.ca,
      clientCertificates: services.clientCertificates,
      tenants: services.tenants,
      edgeAccess: services.edgeAccess,
      store: backends.store,
      changes: services.changes,
      metrics,
      clock,
      logger,
    });
  } catch (err) {
    // The HTTP or edge port is taken (or the edge certificate files are unreadable): stop what
    // already runs.
    await stop(undefined);
    throw err;
  }
  if (config.forwardAllowPrivate) logger.warn('forwarding to private and loopback addresses is allowed');
  logger.info({ address, database: backends.store.dialect }, 'twoway started');
  // Runs once now (scheduled activations, expiry scan, due deliveries), then on its timer; with
  // several workers only the first runs it (PostgreSQL also serialises scans across hosts).
  if (!options.clusterWorker || config.workerIndex === 0) lifecycle.scheduler.start();

  return {
    app,
    url: address,
    edgeUrl: edge.url,
    edge,
    ...(metricsListener !== undefined ? { metricsUrl: metricsListener.url } : {}),
    services,
    store: backends.store,
    dispatchers,
    lifecycle,
    close: () => stop(edge),
  };
}

/**
 * `<publicUrl>/<path>` (the CRL, the OCSP responder), normalised by the WHATWG URL parser (punycode
 * host, percent-encoded path), so that the URI written into certificates is valid (RFC 5280
 * §4.2.1.13 and §4.2.2.1, an IA5String).
 */
function publicEndpointOf(publicUrl: string, path: string): string {
  const base = new URL(publicUrl);
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/`;
  return new URL(path, base).href;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}

/**
 * Prepares a deployment for `TWOWAY_WORKERS` > 1, in the primary before any worker starts: KEK
 * check, migrations and the platform CA, so that workers never race to create them.
 * @throws StartupError as {@link openBackends}
 */
export async function prepareDeployment(config: Config, logger: Logger): Promise<void> {
  const backends = await openBackends(config, logger);
  const services = createServices(backends, config, systemClock, logger);
  try {
    await services.ca.ensure();
  } finally {
    await services.parser.close();
    await backends.store.close();
    await backends.kms.close();
  }
}
