import { createServer } from 'node:http';
import cookie from '@fastify/cookie';
import multipart from '@fastify/multipart';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import type { PlatformCa } from '../ca/platform-ca.js';
import { caRoutes } from '../ca/routes.js';
import { clientCertificateRoutes } from '../client-certificates/routes.js';
import { ClientCertificateSchema, IssuedClientCertificateSchema } from '../client-certificates/schemas.js';
import type { ClientCertificateService } from '../client-certificates/service.js';
import { AppError } from '../errors/app-error.js';
import type { DispatcherCache } from '../forward/dispatchers.js';
import { ForwardEndpoint, isForwardTarget } from '../forward/endpoint.js';
import { runtimeRoutes } from '../forward/routes.js';
import type { RuntimeService } from '../forward/service.js';
import { identityRoutes } from '../identities/routes.js';
import { IdentitySchema } from '../identities/schemas.js';
import type { IdentityService } from '../identities/service.js';
import { identityTestRoutes } from '../identity-tests/routes.js';
import type { IdentityTester } from '../identity-tests/service.js';
import type { AuditNote, AuditService } from '../lifecycle/audit.js';
import { auditOnSend } from '../lifecycle/audit-hook.js';
import { lifecycleRoutes } from '../lifecycle/routes.js';
import type { LifecycleService } from '../lifecycle/service.js';
import type { NotificationSettingsService } from '../lifecycle/settings.js';
import { mappingRoutes } from '../mappings/routes.js';
import { MappingSchema } from '../mappings/schemas.js';
import type { MappingService } from '../mappings/service.js';
import { peopleRoutes, sessionCookie, sessionRoutes } from '../people/routes.js';
import type { PeopleService } from '../people/service.js';
import type { SessionService } from '../people/sessions.js';
import { tenantListRoutes, tenantRoutes } from '../tenants/routes.js';
import { bearerToken, type Principal, type TenantService } from '../tenants/service.js';
import type { Metrics, MetricsAccess } from './metrics.js';
import { errorHandler, sendProblem } from './problem.js';
import { ProblemSchema } from './schemas.js';
import { cookieAuth } from './session-auth.js';
import { refuseUnscopedTenantRoutes, tenantScope } from './tenant-scope.js';

export type { AuditNote };

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set for every `/v1/` route before the handler runs. */
    principal: Principal;
    /** Set by mutating handlers on success; see {@link AuditNote}. */
    audit?: AuditNote;
  }
  interface FastifyContextConfig {
    /** A `/v1/` route that needs no token (the platform CA's certificates and CRL). */
    public?: boolean;
  }
}

export interface AppDeps {
  logger: Logger;
  tenants: TenantService;
  identities: IdentityService;
  mappings: MappingService;
  runtime: RuntimeService;
  dispatchers: DispatcherCache;
  metrics: Metrics;
  /** Who may read `/metrics` (TWOWAY_METRICS_TOKEN or the operator token). */
  metricsAccess: MetricsAccess;
  /**
   * Throws when the store or the KMS cannot be reached, or the store is full (AppError
   * `storage_full`), for /readyz.
   */
  checkReady(): Promise<void>;
  /** /readyz answers `not_ready` when {@link checkReady} takes longer (ms; TWOWAY_READY_TIMEOUT_MS). */
  readyTimeoutMs: number;
  maxUploadBytes: number;
  /** Socket inactivity (ms) after which the listener closes a connection (TWOWAY_HTTP_IDLE_TIMEOUT_MS). */
  idleTimeoutMs: number;
  forwardAllowPrivate: boolean;
  version: string;
  /** Writes `request.audit` notes (see {@link AuditNote}). */
  audit: AuditService;
  settings: NotificationSettingsService;
  tester: IdentityTester;
  /** Expiry alerts and notifications as the API shows them. */
  lifecycle: LifecycleService;
  clientCertificates: ClientCertificateService;
  ca: PlatformCa;
  /** Members, roles, API keys, portal links and browser sessions. */
  people: PeopleDeps;
}

/** What the people routes and the session cookie need (a slice of Config besides the services). */
export interface PeopleDeps {
  service: PeopleService;
  sessions: SessionService;
  /** TWOWAY_PUBLIC_URL: the base of portal links, and https there makes the cookie `Secure`. */
  publicUrl?: string | undefined;
  /** TWOWAY_SESSION_LIFETIME_MS: the cookie's Max-Age. */
  sessionLifetimeMs: number;
  /** TWOWAY_SESSION_SIGN_IN_MAX_PER_MINUTE: operator sign-ins per minute and address. */
  signInMaxPerMinute: number;
}

/**
 * Builds the admin + runtime HTTP app (API.md): `/v1/...` behind bearer auth, `/healthz`,
 * `/readyz`, `/metrics` (bearer: metrics or operator token), `/docs` and `/docs/openapi.json`.
 * Errors leave as RFC 9457 problem+json.
 */
export async function buildHttpApp(deps: AppDeps) {
  const forward = new ForwardEndpoint({
    tenants: deps.tenants,
    runtime: deps.runtime,
    dispatchers: deps.dispatchers,
    metrics: deps.metrics,
    forwardAllowPrivate: deps.forwardAllowPrivate,
    logger: deps.logger.child({ module: 'forward' }),
  });
  const app = Fastify({
    // The forward route is answered before Fastify routes anything (see forward/endpoint.ts).
    serverFactory(handler) {
      const server = createServer((req, res) => {
        if (isForwardTarget(req.url)) forward.serve(req, res);
        else handler(req, res);
      });
      // Keep-alive clients (the platform's forwarders) should not be cut between requests.
      server.keepAliveTimeout = 65_000;
      // Fastify's default (Node's would cut any request whose body takes over 5 minutes, such as a
      // large upload streamed to a slow remote server); headersTimeout still bounds slow headers.
      server.requestTimeout = 0;
      // What bounds a slow client instead: a connection idle this long (a body that stopped coming,
      // an answer nobody reads) is closed, on the forward path too.
      server.timeout = deps.idleTimeoutMs;
      return server;
    },
    loggerInstance: deps.logger.child({ module: 'http' }),
    // Request lines are logged by our onResponse hook (not at all on the forward hot path).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 256 * 1024,
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('preClose', (done) => {
    forward.close();
    done();
  });
  const cookieOptions = sessionCookie(deps.people.publicUrl, deps.people.sessionLifetimeMs);
  app.setErrorHandler(errorHandler);
  // Tenant routes live in the tenant scope, which authorises the tenant before any handler runs.
  app.addHook('onRoute', refuseUnscopedTenantRoutes);
  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, new AppError('not_found', `No route ${request.method} ${request.url.split('?')[0]}.`));
  });
  app.addSchema(ProblemSchema);
  app.addSchema(IdentitySchema);
  app.addSchema(MappingSchema);
  app.addSchema(ClientCertificateSchema);
  app.addSchema(IssuedClientCertificateSchema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Twoway API', version: deps.version, description: 'Multi-tenant mutual-TLS gateway' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Operator token or tenant API key' },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: cookieOptions.name,
            description:
              'Browser session (portal link or console sign-in); unsafe methods also need Twoway-CSRF',
          },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/docs/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(multipart, {
    limits: {
      fileSize: deps.maxUploadBytes,
      fieldSize: deps.maxUploadBytes,
      files: 4,
      fields: 16,
      parts: 20,
    },
  });

  // Cookies are parsed in onRequest, before the auth hook below reads the session cookie.
  await app.register(cookie);
  // Only routes that ask for it (operator sign-in) are limited.
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: () => new AppError('rate_limited', 'Too many sign-in attempts; wait a minute.'),
  });

  app.decorateRequest('principal');
  app.decorateRequest('browserSession');
  const bySession = cookieAuth({ sessions: deps.people.sessions, cookie: cookieOptions });
  app.addHook('onRequest', async (request) => {
    // The matched route, not the raw URL: the router decodes percent-escapes, so `/%761/tenants`
    // reaches the `/v1/tenants` handler while its raw URL does not start with `/v1/`.
    const path = request.routeOptions.url ?? request.url;
    if (!path.startsWith('/v1/') || request.routeOptions.config?.public === true) return;
    if (await bySession(request, path)) return;
    request.principal = await deps.tenants.authenticate(bearerToken(request.headers.authorization));
  });
  app.addHook('onResponse', async (request, reply) => {
    if (request.url.startsWith('/v1/runtime/forward')) return;
    request.log.info(
      {
        method: request.method,
        url: request.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request served',
    );
  });

  app.addHook('onSend', auditOnSend(deps.audit));
  // An answer sent before the request body was read (a refusal in the auth hook, a 404) closes the
  // connection: otherwise Node reads and discards the rest of the body on a live socket, and with
  // no request timeout a client that never finishes its body holds the socket for ever.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  app.get('/healthz', { schema: { tags: ['operations'], security: [] } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['operations'], security: [] } }, async (_request, reply) => {
    try {
      await withinMs(deps.checkReady(), deps.readyTimeoutMs);
      return { status: 'ready' };
    } catch (err) {
      deps.logger.warn({ err }, 'readiness check failed');
      if (err instanceof AppError && err.code === 'storage_full') return sendProblem(reply, err);
      return sendProblem(reply, new AppError('not_ready', 'The store or the KMS is not reachable.'));
    }
  });
  // Not public: the metrics name every tenant and object (MetricsAccess).
  app.get('/metrics', { schema: { tags: ['operations'] } }, async (request, reply) => {
    await deps.metricsAccess.check(bearerToken(request.headers.authorization));
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  await app.register(tenantListRoutes, { tenants: deps.tenants });
  await app.register(tenantScope, {
    tenants: deps.tenants,
    async routes(scope) {
      await scope.register(tenantRoutes, { tenants: deps.tenants });
      await scope.register(identityRoutes, {
        identities: deps.identities,
        maxUploadBytes: deps.maxUploadBytes,
      });
      await scope.register(mappingRoutes, { mappings: deps.mappings });
      await scope.register(lifecycleRoutes, {
        settings: deps.settings,
        audit: deps.audit,
        lifecycle: deps.lifecycle,
      });
      await scope.register(identityTestRoutes, { tester: deps.tester, maxUploadBytes: deps.maxUploadBytes });
      await scope.register(clientCertificateRoutes, {
        clientCertificates: deps.clientCertificates,
        maxUploadBytes: deps.maxUploadBytes,
      });
      await scope.register(peopleRoutes, {
        people: deps.people.service,
        sessions: deps.people.sessions,
        publicUrl: deps.people.publicUrl,
      });
    },
  });
  await app.register(sessionRoutes, {
    sessions: deps.people.sessions,
    cookie: cookieOptions,
    signInMaxPerMinute: deps.people.signInMaxPerMinute,
  });
  await app.register(caRoutes, { ca: deps.ca });
  await app.register(runtimeRoutes, { runtime: deps.runtime, endpoint: forward });
  return app;
}

/**
 * `work`, or a rejection once `ms` milliseconds have passed without it settling (a database that
 * accepts connections but does not answer must not hold /readyz for the length of its own timeouts).
 */
function withinMs(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** The Fastify instance {@link buildHttpApp} returns. */
export type HttpApp = Awaited<ReturnType<typeof buildHttpApp>>;
