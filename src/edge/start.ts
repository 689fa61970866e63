import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Agent, buildConnector } from 'undici';
import type { PlatformCa } from '../ca/platform-ca.js';
import { DAY_MS } from '../certificates/index.js';
import type { ClientCertificateService } from '../client-certificates/service.js';
import type { Config } from '../config/config.js';
import { skippingInterimResponses } from '../forward/interim-responses.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import type { ClientCertificateStore } from '../store/index.js';
import type { TenantService } from '../tenants/service.js';
import { platformIssuedLookup } from './admission.js';
import { ClientCertificateIndex } from './certificate-index.js';
import { type EdgeListener, type EdgeOptions, startEdge } from './edge-server.js';

/** The default server certificate: 90 days, renewed when 30 are left (checked twice a day). */
const SERVER_CERT_DAYS = 90;
const SERVER_CERT_RENEW_BEFORE_MS = 30 * DAY_MS;
const SERVER_CERT_CHECK_MS = 12 * 3_600_000;

/** The configuration the edge reads. */
export type EdgeConfig = Pick<
  Config,
  | 'host'
  | 'edgePort'
  | 'edgeUpstream'
  | 'edgeHostNames'
  | 'edgeCertFile'
  | 'edgeKeyFile'
  | 'edgeSessionTickets'
  | 'forwardConnectTimeoutMs'
  | 'forwardHeadersTimeoutMs'
  | 'forwardBodyTimeoutMs'
  | 'forwardKeepAliveTimeoutMs'
>;

export interface EdgeDeps {
  config: EdgeConfig;
  ca: PlatformCa;
  clientCertificates: ClientCertificateService;
  tenants: Pick<TenantService, 'authenticate'>;
  store: Pick<ClientCertificateStore, 'listClientCertificateChanges' | 'findClientCertificatesByFingerprint'>;
  changes: ChangeBus;
  /** Where the edge counts requests and handshakes. */
  metrics: EdgeOptions['metrics'];
  clock: Clock;
  logger: Logger;
}

/** The edge as `twoway serve` runs it. */
export interface RunningEdge {
  /** `https://<host>:<port>` of the edge listener. */
  url: string;
  listener: EdgeListener;
  index: ClientCertificateIndex;
  close(): Promise<void>;
}

/**
 * Loads the client certificate index, keeps it in step (changes made through this process's
 * service before the API answers; other processes' changes when the revision poll sees them), and
 * starts the edge listener on `config.host:config.edgePort` with the configured server certificate
 * (`TWOWAY_EDGE_CERT_FILE` + `TWOWAY_EDGE_KEY_FILE`) or, by default, one the platform CA issues for
 * `TWOWAY_EDGE_HOST_NAMES` (renewed automatically). Requests other than the hello endpoint go to
 * `TWOWAY_EDGE_UPSTREAM` when it is set.
 */
export async function startEdgeListener(deps: EdgeDeps): Promise<RunningEdge> {
  const { config, ca, store, clock, logger } = deps;
  const log = logger.child({ module: 'edge' });
  const index = new ClientCertificateIndex(store, log);
  await index.load();
  deps.clientCertificates.onChange(() => index.sync());
  // Another worker of this deployment changed a client certificate: reload before acknowledging.
  deps.changes.onPeerChange(async (change) => {
    if (change.kind !== 'client_certificate') return;
    ca.forgetCachedCrl();
    await index.sync();
  });
  deps.changes.on(
    () => {},
    () => {
      ca.forgetCachedCrl();
      index.sync().catch((err: unknown) => log.warn({ err }, 'client certificate index sync failed'));
    },
  );

  const hostNames = config.edgeHostNames
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  if (hostNames.length === 0) hostNames.push('localhost');
  let tls: { certificatePem: string; keyPem: string; notAfter?: Date };
  if (config.edgeCertFile !== undefined && config.edgeKeyFile !== undefined) {
    tls = {
      certificatePem: readFileSync(config.edgeCertFile, 'utf8'),
      keyPem: readFileSync(config.edgeKeyFile, 'utf8'),
    };
  } else {
    const issued = await ca.issueServerCertificate(hostNames, SERVER_CERT_DAYS);
    tls = {
      certificatePem: issued.certificatePem + issued.chainPem,
      keyPem: issued.keyPem,
      notAfter: issued.notAfter,
    };
  }

  const agent = config.edgeUpstream
    ? new Agent({
        // An unsolicited 100 Continue from the platform is skipped, not a 502 (RFC 9110 §15.2).
        connect: skippingInterimResponses(buildConnector({ timeout: config.forwardConnectTimeoutMs })),
        headersTimeout: config.forwardHeadersTimeoutMs,
        bodyTimeout: config.forwardBodyTimeoutMs,
        keepAliveTimeout: config.forwardKeepAliveTimeoutMs,
        keepAliveMaxTimeout: config.forwardKeepAliveTimeoutMs,
      })
    : undefined;
  const listener = await startEdge({
    host: config.host,
    port: config.edgePort,
    certificatePem: tls.certificatePem,
    keyPem: tls.keyPem,
    index,
    authenticate: (token) => deps.tenants.authenticate(token),
    chainOf: async (cert) => ((await ca.issued(cert)) ? (await ca.chainDer()).slice(0, 1) : []),
    lookupUnindexed: platformIssuedLookup({
      issuedByPlatformCa: (cert) => ca.issued(cert),
      store,
      index,
    }),
    ...(agent && config.edgeUpstream
      ? { upstream: { url: new URL(config.edgeUpstream), dispatcher: agent } }
      : {}),
    sessionTickets: config.edgeSessionTickets,
    metrics: deps.metrics,
    clock,
    logger,
  });

  let renewal: NodeJS.Timeout | undefined;
  if (tls.notAfter !== undefined) {
    let notAfter = tls.notAfter;
    renewal = setInterval(() => {
      if (notAfter.getTime() - clock.now().getTime() > SERVER_CERT_RENEW_BEFORE_MS) return;
      ca.issueServerCertificate(hostNames, SERVER_CERT_DAYS).then(
        (issued) => {
          listener.setCertificate(issued.certificatePem + issued.chainPem, issued.keyPem);
          notAfter = issued.notAfter;
          log.info({ notAfter: issued.notAfter }, 'edge server certificate renewed');
        },
        (err: unknown) => log.error({ err }, 'edge server certificate renewal failed'),
      );
    }, SERVER_CERT_CHECK_MS);
    renewal.unref();
  }

  return {
    url: listener.url,
    listener,
    index,
    async close() {
      clearInterval(renewal);
      await listener.close();
      await agent?.close();
    },
  };
}
