import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { AppError } from '../errors/app-error.js';
import { bearerToken } from '../tenants/service.js';
import { writeRawProblem } from './problem.js';

/** Prometheus metrics of one Twoway process (a registry per app, so tests can build many). */
export interface Metrics {
  registry: Registry;
  /** Forward requests by outcome: `ok` (the remote answered) or a gateway error code. */
  forwardRequests: Counter<'outcome'>;
  /** Forward latency in seconds, from route entry to the end of the response, by outcome. */
  forwardDuration: Histogram<'outcome'>;
  /** Edge requests by outcome: `ok` (answered or proxied) or the refusal/gateway error code. */
  edgeRequests: Counter<'outcome'>;
  /** Completed edge TLS handshakes by whether a client certificate was presented (`yes`/`no`). */
  edgeHandshakes: Counter<'certificate'>;
}

/** A fresh registry with the process's default metrics and the forward and edge counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'twoway_process_' });
  return {
    registry,
    forwardRequests: new Counter({
      name: 'twoway_forward_requests_total',
      help: 'Forwarded requests by outcome (ok, or the Twoway-Error code)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    forwardDuration: new Histogram({
      name: 'twoway_forward_duration_seconds',
      help: 'Forward latency from request to end of response, by outcome',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    edgeRequests: new Counter({
      name: 'twoway_edge_requests_total',
      help: 'Edge listener requests by outcome (ok, or the refusal or Twoway-Error code)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    edgeHandshakes: new Counter({
      name: 'twoway_edge_handshakes_total',
      help: 'Completed edge TLS handshakes by whether the client presented a certificate',
      labelNames: ['certificate'],
      registers: [registry],
    }),
  };
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Who may read `/metrics`. The metrics name every tenant and object id (certificate notAfter gauges),
 * so they are not public: the bearer token must be `TWOWAY_METRICS_TOKEN` or the operator token.
 * With neither set, the main listener's `/metrics` answers 401 to everyone (a separate metrics
 * listener can still serve them, see {@link startMetricsListener}).
 */
export class MetricsAccess {
  readonly #tokenSha256: Buffer | undefined;
  readonly #isOperator: (token: string) => Promise<boolean>;

  /**
   * @param metricsToken `TWOWAY_METRICS_TOKEN`, compared in constant time (as SHA-256 digests).
   * @param isOperator whether a bearer token is the operator token (TenantService.authenticate).
   */
  constructor(metricsToken: string | undefined, isOperator: (token: string) => Promise<boolean>) {
    this.#tokenSha256 = metricsToken === undefined ? undefined : sha256(metricsToken);
    this.#isOperator = isOperator;
  }

  /** Whether a metrics token is configured. */
  get hasToken(): boolean {
    return this.#tokenSha256 !== undefined;
  }

  /**
   * Resolves when `token` may read the metrics.
   * @throws AppError `unauthorized` (401) otherwise.
   */
  async check(token: string | undefined): Promise<void> {
    if (token !== undefined) {
      if (this.#tokenSha256 !== undefined && timingSafeEqual(sha256(token), this.#tokenSha256)) return;
      if (await this.#isOperator(token)) return;
    }
    throw new AppError('unauthorized', 'GET /metrics needs the metrics token or the operator token.');
  }
}

/** A running metrics listener. */
export interface MetricsListener {
  /** `http://<host>:<port>`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Starts `TWOWAY_METRICS_LISTEN`: a plain HTTP listener on `host:port` (0 picks a free port) that
 * serves `GET`/`HEAD /metrics` (Prometheus text format) and nothing else (`404 not_found`,
 * `405 method_not_allowed`). It asks for a bearer token (`401 unauthorized`) only when
 * `TWOWAY_METRICS_TOKEN` is set (`access.hasToken`): bound to loopback or a scrape network, the
 * address is the protection, as for nginx's stub_status or Envoy's admin port.
 * @throws the listen error (EADDRINUSE, EACCES).
 */
export async function startMetricsListener(options: {
  host: string;
  port: number;
  registry: Registry;
  access: MetricsAccess;
  logger: Logger;
}): Promise<MetricsListener> {
  const { registry, access } = options;
  const serve = async (method: string, target: string, authorization: string | undefined) => {
    if (target.split('?')[0] !== '/metrics') throw new AppError('not_found', 'Only /metrics is served here.');
    if (method !== 'GET' && method !== 'HEAD') throw new AppError('method_not_allowed');
    if (access.hasToken) await access.check(bearerToken(authorization));
    return registry.metrics();
  };
  const server = createServer((req, res) => {
    req.resume();
    serve(req.method ?? '', req.url ?? '', req.headers.authorization).then(
      (text) => {
        res.writeHead(200, {
          'content-type': registry.contentType,
          'content-length': Buffer.byteLength(text),
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        const appError =
          err instanceof AppError ? err : new AppError('internal_error', undefined, { cause: err });
        if (appError.code === 'internal_error') options.logger.error({ err }, 'metrics failed');
        writeRawProblem(
          res,
          appError,
          appError.code === 'method_not_allowed' ? { headers: { allow: 'GET, HEAD' } } : {},
        );
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  options.logger.info({ port, token: access.hasToken }, 'metrics listener started');
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
