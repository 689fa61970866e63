/**
 * `ANY /v1/runtime/forward` on raw Node objects (API.md, Runtime). The HTTP listener sends this
 * route here before Fastify sees it (http/app.ts, `serverFactory`): its routing, request and reply
 * objects and hooks cost about 8% of a forward's CPU (docs/benchmarks.md).
 * The Fastify route of the same path stays for the OpenAPI document and for requests that reach it
 * another way (a percent-escaped path, `inject()`); it calls {@link ForwardEndpoint.handle} with the
 * principal its auth hook found, so both ways run the same code.
 */
import type http from 'node:http';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../errors/app-error.js';
import type { Metrics } from '../http/metrics.js';
import { writeRawProblem } from '../http/problem.js';
import { parseForwardUrl } from '../net/address-guard.js';
import { LogLimiter } from '../shared/logger.js';
import { bearerToken, type Principal, type TenantService } from '../tenants/service.js';
import type { DispatcherCache } from './dispatchers.js';
import { causeMessage, proxyRequest } from './proxy.js';
import type { RuntimeService } from './service.js';

/** What {@link ForwardEndpoint} needs. */
export interface ForwardEndpointDeps {
  /** Bearer token → principal; throws AppError `unauthorized`. */
  tenants: Pick<TenantService, 'authenticate'>;
  /** The in-memory runtime index: mapping, identity and TLS context of a forward. */
  runtime: Pick<RuntimeService, 'plan'>;
  /** The connection pool per identity version (leased per forward). */
  dispatchers: DispatcherCache;
  /** Where `twoway_forward_requests_total` and `twoway_forward_duration_seconds` live. */
  metrics: Metrics;
  /** Allow private and loopback destinations (TWOWAY_FORWARD_ALLOW_PRIVATE). */
  forwardAllowPrivate: boolean;
  /**
   * Receives `internal_error` failures (error) and `upstream_protocol_error` (warn, rate-limited);
   * nothing is logged per request.
   */
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
  /** The name of a `Twoway-*` field sent more than once (refused after authentication). */
  repeated: string | undefined;
}

/**
 * Reads Authorization (the first one, as Node does) and the three `Twoway-*` fields (the first of
 * each; a repeat is noted in `repeated`: the gateway must not guess which tenant, service or
 * destination was meant).
 */
function readFields(raw: string[]): ForwardFields {
  const fields: ForwardFields = {
    authorization: undefined,
    tenant: undefined,
    service: undefined,
    forwardUrl: undefined,
    repeated: undefined,
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
    if (fields[key] === undefined) fields[key] = raw[i + 1];
    else fields.repeated ??= name;
  }
  return fields;
}

/**
 * The forward route's handler: authenticates, reads the Twoway fields, plans the forward from the
 * runtime index, leases the identity's pool and streams the request (forward/proxy.ts). Every
 * refusal and gateway error is answered as RFC 9457 problem+json with `Twoway-Error`:
 * `unauthorized` (401), `bad_request` (400: missing or repeated field, operator without
 * Twoway-Tenant), `not_found` (404: another tenant), `forward_url_invalid` (400),
 * `forward_destination_blocked` (403), `no_mapping` (403), `identity_disabled` /
 * `identity_expired` / `identity_not_yet_valid` (409), `upstream_tls_failed` /
 * `upstream_unreachable` / `upstream_protocol_error` (502), `upstream_timeout` (504), `not_ready`
 * (503, shutting down).
 * Requests that passed authentication are counted in `twoway_forward_requests_total{outcome}` and
 * timed in `twoway_forward_duration_seconds` (seconds, from after authentication to the end of the
 * response), the same way on both entry paths.
 */
export class ForwardEndpoint {
  readonly #deps: ForwardEndpointDeps;
  // The common outcome's label children, bound once (prom-client hashes labels on every call).
  readonly #okCount: ReturnType<Metrics['forwardRequests']['labels']>;
  readonly #okDuration: ReturnType<Metrics['forwardDuration']['labels']>;
  /** A remote server that does not speak HTTP fails every forward to it: a few log lines a minute. */
  readonly #protocolErrors = new LogLimiter();
  #closing = false;

  constructor(deps: ForwardEndpointDeps) {
    this.#deps = deps;
    this.#okCount = deps.metrics.forwardRequests.labels({ outcome: 'ok' });
    this.#okDuration = deps.metrics.forwardDuration.labels({ outcome: 'ok' });
  }

  /**
   * From now on the listener's entry answers `not_ready` (503) with `Connection: close`, as Fastify
   * does for its own routes while the app closes (keep-alive forwarders then reconnect elsewhere).
   */
  close(): void {
    this.#closing = true;
  }

  /**
   * The listener's entry (a request whose target passed {@link isForwardTarget}): checks the bearer
   * token, then {@link handle}. Never throws; every failure is answered.
   */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#closing) {
      this.#refuse(req, res, new AppError('not_ready', 'The server is shutting down.'), true);
      return;
    }
    const fields = readFields(req.rawHeaders);
    this.#deps.tenants
      .authenticate(bearerToken(fields.authorization))
      .then(
        (principal) => this.#handle(req, res, principal, fields),
        (err: unknown) => this.#refuse(req, res, toAppError(err), !req.complete),
      )
      .catch((err: unknown) => {
        this.#deps.logger.error({ err }, 'forward failed');
        this.#refuse(req, res, new AppError('internal_error'), true);
      });
  }

  /**
   * Serves one forward on `req`/`res` for an authenticated `principal` (the Fastify route's auth
   * hook, or {@link serve}). Resolves once the response is finished or the client went away;
   * errors are answered, never thrown.
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse, principal: Principal): Promise<void> {
    return this.#handle(req, res, principal, readFields(req.rawHeaders));
  }

  /** Answers a refusal before the forward started (not counted: the Fastify path cannot count it either). */
  #refuse(req: http.IncomingMessage, res: http.ServerResponse, err: AppError, close: boolean): void {
    writeRawProblem(res, err, { close });
    if (!req.complete) req.resume();
  }

  async #handle(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    principal: Principal,
    fields: ForwardFields,
  ): Promise<void> {
    const started = performance.now();
    let outcome = 'ok';
    try {
      await this.#forward(req, res, principal, fields);
    } catch (err) {
      const appError = toAppError(err);
      outcome = appError.code;
      if (appError.code === 'internal_error') this.#deps.logger.error({ err }, 'forward failed');
      else if (appError.code === 'upstream_protocol_error') {
        const tenantId = principal.kind === 'tenant' ? principal.tenantId : fields.tenant;
        this.#protocolErrors.warn(
          this.#deps.logger,
          { tenantId, service: fields.service, reason: causeMessage(appError) },
          'remote server answered outside HTTP',
        );
      }
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
    principal: Principal,
    fields: ForwardFields,
  ): Promise<void> {
    const { runtime, dispatchers } = this.#deps;
    if (fields.repeated !== undefined) throw new AppError('bad_request', `Send ${fields.repeated} once.`);
    // A key's roles must grant runtime:forward (as requirePermission in tenants/service.ts checks).
    if (principal.kind === 'tenant' && !principal.permissions.has('runtime:forward')) {
      throw new AppError('forbidden', 'This needs the permission runtime:forward.');
    }
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
