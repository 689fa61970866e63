import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { problemResponses } from '../http/schemas.js';
import { requirePermission } from '../tenants/service.js';
import { FORWARD_PATH, type ForwardEndpoint } from './endpoint.js';
import type { ResolveAnswer, RuntimeService } from './service.js';

export interface RuntimeRouteOptions {
  runtime: RuntimeService;
  /** Serves the forward route (the listener also calls it directly, see forward/endpoint.ts). */
  endpoint: ForwardEndpoint;
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
  const { runtime, endpoint } = options;

  app.post(
    '/v1/runtime/resolve',
    {
      schema: {
        tags: ['runtime'],
        summary: 'Which mapping and identity would serve each (tenant, service, url) (needs runtime:forward)',
        body: ResolveBody,
        response: {
          200: Type.Object({ items: Type.Array(ResolveAnswerSchema) }),
          ...problemResponses,
          403: Type.Ref('Problem'),
        },
      },
    },
    async (request) => {
      const principal = request.principal;
      requirePermission(principal, 'runtime:forward');
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
      FORWARD_PATH,
      {
        schema: {
          tags: ['runtime'],
          summary:
            'Send this request over mTLS to Twoway-Forward-Url with the mapped identity (needs runtime:forward)',
          description:
            'Headers, each at most once: Twoway-Forward-Url (absolute https URL), Twoway-Service, Twoway-Tenant (operator token only). ' +
            'The remote status, headers and body are streamed back; gateway errors carry Twoway-Error.',
        },
      },
      async (request, reply) => {
        reply.hijack();
        await endpoint.handle(request.raw, reply.raw, request.principal);
      },
    );
  });
};
