import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { AppError, toAppError } from '../errors/app-error.js';
import type { Metrics } from '../http/metrics.js';
import { writeRawProblem } from '../http/problem.js';
import { problemResponses } from '../http/schemas.js';
import { parseForwardUrl } from './address-guard.js';
import type { DispatcherCache } from './dispatchers.js';
import { proxyRequest } from './proxy.js';
import type { ResolveAnswer, RuntimeService } from './service.js';

export interface RuntimeRouteOptions {
  runtime: RuntimeService;
  dispatchers: DispatcherCache;
  metrics: Metrics;
  forwardAllowPrivate: boolean;
}

const ResolveBody = Type.Object({
  items: Type.Array(
    Type.Object({ tenant: Type.String(), service: Type.String(), url: Type.String({ maxLength: 8192 }) }),
    { maxItems: 1000 },
  ),
});

const ResolveAnswerSchema = Type.Object({
  tenant: Type.String(),
  service: Type.String(),
  url: Type.String(),
  configured: Type.Boolean(),
  mappingId: Type.Optional(Type.String()),
  identityId: Type.Optional(Type.String()),
  identityStatus: Type.Optional(Type.String()),
});

/** `POST /v1/runtime/resolve` and `ANY /v1/runtime/forward`. */
export const runtimeRoutes: FastifyPluginAsyncTypebox<RuntimeRouteOptions> = async (app, options) => {
  const { runtime, dispatchers, metrics, forwardAllowPrivate } = options;
  // The common outcome's label children, bound once (prom-client hashes labels on every call).
  const okCount = metrics.forwardRequests.labels({ outcome: 'ok' });
  const okDuration = metrics.forwardDuration.labels({ outcome: 'ok' });

  app.post(
    '/v1/runtime/resolve',
    {
      schema: {
        tags: ['runtime'],
        summary: 'Which mapping and identity would serve each (tenant, service, url)',
        body: ResolveBody,
        response: { 200: Type.Object({ items: Type.Array(ResolveAnswerSchema) }), ...problemResponses },
      },
    },
    async (request) => {
      const principal = request.principal;
      const items: ResolveAnswer[] = [];
      for (const item of request.body.items) {
        // Another tenant's items answer `configured: false`, exactly like an unknown tenant.
        if (principal.kind === 'tenant' && principal.tenantId !== item.tenant) {
          items.push({ ...item, configured: false });
        } else items.push(await runtime.resolve(item.tenant, item.service, item.url));
      }
      return { items };
    },
  );

  // The forward body is streamed, never parsed: this scope reads nothing itself.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));

    scope.all(
      '/v1/runtime/forward',
      {
        schema: {
          tags: ['runtime'],
          summary: 'Send this request over mTLS to Twoway-Forward-Url with the mapped identity',
          description:
            'Headers: Twoway-Forward-Url (absolute https URL), Twoway-Service, Twoway-Tenant (operator token only). ' +
            'The remote status, headers and body are streamed back; gateway errors carry Twoway-Error.',
        },
      },
      async (request, reply) => {
        const started = performance.now();
        const principal = request.principal;
        const headers = request.headers;
        const tenantHeader = headers['twoway-tenant'];
        let tenantId: string;
        if (principal.kind === 'operator') {
          if (typeof tenantHeader !== 'string' || tenantHeader === '') {
            throw new AppError('bad_request', 'Twoway-Tenant is required with the operator token.');
          }
          tenantId = tenantHeader;
        } else {
          if (tenantHeader !== undefined && tenantHeader !== principal.tenantId) {
            throw new AppError('not_found', 'No such tenant.');
          }
          tenantId = principal.tenantId;
        }
        const service = headers['twoway-service'];
        if (typeof service !== 'string' || service === '') {
          throw new AppError('bad_request', 'Twoway-Service is required.');
        }
        const forwardUrl = headers['twoway-forward-url'];
        const url = parseForwardUrl(
          typeof forwardUrl === 'string' ? forwardUrl : undefined,
          forwardAllowPrivate,
        );
        let outcome = 'ok';
        try {
          const plan = await runtime.plan(tenantId, service, url);
          const lease = dispatchers.lease(plan.credential);
          reply.hijack();
          try {
            await proxyRequest(request.raw, reply.raw, { url, dispatcher: lease.dispatcher });
          } catch (err) {
            const appError = toAppError(err);
            outcome = appError.code;
            if (appError.status >= 500 && appError.code === 'internal_error') {
              request.log.error({ err }, 'forward failed');
            }
            writeRawProblem(reply.raw, appError);
          } finally {
            lease.release();
            // The remote server may answer before reading the whole body (nginx's `return` does):
            // drain what the client still sends, so the keep-alive connection stays usable.
            if (!request.raw.complete) request.raw.resume();
          }
        } catch (err) {
          outcome = toAppError(err).code;
          throw err;
        } finally {
          const seconds = (performance.now() - started) / 1000;
          if (outcome === 'ok') {
            okCount.inc();
            okDuration.observe(seconds);
          } else {
            metrics.forwardRequests.inc({ outcome });
            metrics.forwardDuration.observe({ outcome }, seconds);
          }
        }
      },
    );
  });
};
