/**
 * `ANY /v1/runtime/forward` on raw Node objects (API.md, Runtime). The HTTP listener sends this
 * route here before Fastify sees it (http/app.ts, `serverFactory`): routing, request and reply
 * objects, hooks and the schema layer cost about a third of the forward's CPU (docs/benchmarks.md).
 * The Fastify route of the same path stays for the OpenAPI document and for requests that reach it
 * another way (a percent-escaped path, `inject()`); it calls {@link ForwardEndpoint.handle} with the
 * principal its auth hook found, so both ways run the same code.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../errors/app-error.js';
import type { Metrics } from '../http/metrics.js';
import { writeRawProblem } from '../http/problem.js';
import { bearerToken, type Principal, type TenantService } from '../tenants/service.js';
import { parseForwardUrl } from './address-guard.js';
import type { DispatcherCache } from './dispatchers.js';
import { proxyRequest } from './proxy.js';
import type { RuntimeService } from './service.js';

/** What {@link ForwardEndpoint} needs. */
export interface ForwardEndpointDeps {
  tenants: Pick<TenantService, 'authenticate'>;
  runtime: Pick<RuntimeService, 'plan'>;
  dispatchers: DispatcherCache;
  metrics: Metrics;
  /** Allow private and loopback destinations (TWOWAY_FORWARD_ALLOW_PRIVATE). */
  forwardAllowPrivate: boolean;
  /** Receives `internal_error` failures only; nothing is logged per request. */
  logger: Logger;
}

/** The path of the route; the pre-router also accepts it with a query string. */
export const FORWARD_PATH = '/v1/runtime/forward';

/** True when a raw request target is exactly the forward route (optionally with `?query`). */
export function isForwardTarget(target: string | undefined): boolean {
  return (
    target?.startsWith(FORWARD_PATH) === true &&
    (target.length === FORWARD_PATH.length || target.charCodeAt(FORWARD_PATH.length) === 63) // '?'
  );
}

/** The request fields the route reads, from `req.rawHeaders` (so `req.headers` is never built). */
interface ForwardFields {
  authorization: string | undefined;
  tenant: string | undefined;
  service: string | undefined;
  forwardUrl: string | undefined;
}

/**
 * Reads Authorization (the first one, as Node does) and the three `Twoway-*` fields.
 * @throws AppError `bad_request` when a `Twoway-*` field appears twice: the gateway must not guess
 *   which tenant, service or destination was meant.
 */
function readFields(raw: string[]): ForwardFields {
  const fields: ForwardFields = {
    authorization: undefined,
    tenant: undefined,
    service: undefined,
    forwardUrl: undefined,
  };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // The four names are 13 to 18 characters long: skip the lowercasing for every other field.
    if (name.length < 13 || name.length > 18) continue;
    const lower = name.toLowerCase();
    if (lower === 'authorization') {
      fields.authorization ??= raw[i + 1];
      continue;
    }
    const key =
      lower === 'twoway-tenant'
        ? 'tenant'
        : lower === 'twoway-service'
          ? 'service'
          : lower === 'twoway-forward-url'
            ? 'forwardUrl'
            : null;
    if (key === null) continue;
    if (fields[key] !== undefined) throw new AppError('bad_request', `Send ${name} once.`);
    fields[key] = raw[i + 1];
  }
  return fields;
}

/**
 * The forward route's handler: authenticates (unless given a principal), reads the Twoway fields,
 * plans the forward from the runtime index, leases the identity's pool and streams the request
 * (forward/proxy.ts). Every gateway error is answered as problem+json with `Twoway-Error`; counts
 * and latency go to `twoway_forward_requests_total` / `twoway_forward_duration_seconds` by outcome.
 */
export class ForwardEndpoint {
  readonly #deps: ForwardEndpointDeps;
  // The common outcome's label children, bound once (prom-client hashes labels on every call).
  readonly #okCount: ReturnType<Metrics['forwardRequests']['labels']>;
  readonly #okDuration: ReturnType<Metrics['forwardDuration']['labels']>;

  constructor(deps: ForwardEndpointDeps) {
    this.#deps = deps;
    this.#okCount = deps.metrics.forwardRequests.labels({ outcome: 'ok' });
    this.#okDuration = deps.metrics.forwardDuration.labels({ outcome: 'ok' });
  }

  /** The listener's entry (a request whose target passed {@link isForwardTarget}); never throws. */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.handle(req, res, undefined).catch((err: unknown) => {
      this.#deps.logger.error({ err }, 'forward failed');
      writeRawProblem(res, new AppError('internal_error'), { close: !req.complete });
    });
  }

  /**
   * Serves one forward on `req`/`res`; `principal` when the caller already authenticated (the
   * Fastify route), otherwise the bearer token is checked here. Resolves once the response is
   * finished or the client went away; errors are answered, never thrown.
   */
  async handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    principal: Principal | undefined,
  ): Promise<void> {
    const started = performance.now();
    let outcome = 'ok';
    try {
      await this.#forward(req, res, principal);
    } catch (err) {
      const appError = toAppError(err);
      outcome = appError.code;
      if (appError.code === 'internal_error') this.#deps.logger.error({ err }, 'forward failed');
      writeRawProblem(res, appError, { close: !req.complete });
    } finally {
      // The remote server may answer before reading the whole body (nginx's `return` does), or we
      // refused before reading it: drain what the client still sends.
      if (!req.complete) req.resume();
      const seconds = (performance.now() - started) / 1000;
      if (outcome === 'ok') {
        this.#okCount.inc();
        this.#okDuration.observe(seconds);
      } else {
        this.#deps.metrics.forwardRequests.inc({ outcome });
        this.#deps.metrics.forwardDuration.observe({ outcome }, seconds);
      }
    }
  }

  async #forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    known: Principal | undefined,
  ): Promise<void> {
    const { runtime, dispatchers } = this.#deps;
    const fields = readFields(req.rawHeaders);
    const principal = known ?? (await this.#deps.tenants.authenticate(bearerToken(fields.authorization)));
    let tenantId: string;
    if (principal.kind === 'operator') {
      if (fields.tenant === undefined || fields.tenant === '') {
        throw new AppError('bad_request', 'Twoway-Tenant is required with the operator token.');
      }
      tenantId = fields.tenant;
    } else {
      if (fields.tenant !== undefined && fields.tenant !== principal.tenantId) {
        throw new AppError('not_found', 'No such tenant.');
      }
      tenantId = principal.tenantId;
    }
    if (fields.service === undefined || fields.service === '') {
      throw new AppError('bad_request', 'Twoway-Service is required.');
    }
    const url = parseForwardUrl(fields.forwardUrl, this.#deps.forwardAllowPrivate);
    const plan = await runtime.plan(tenantId, fields.service, url);
    const lease = dispatchers.lease(plan.credential);
    try {
      await proxyRequest(req, res, { url, dispatcher: lease.dispatcher });
    } finally {
      lease.release();
    }
  }
}
