import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, test } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import { errorHandler } from '../../../src/http/problem.js';
import { refuseUnscopedTenantRoutes, tenantScope } from '../../../src/http/tenant-scope.js';
import { PERMISSIONS, type Permission } from '../../../src/people/permissions.js';
import type { Principal } from '../../../src/tenants/service.js';

/** TenantService.authorize's rule over two existing tenants, `acme` and `globex`. */
const tenants = {
  async authorize(principal: Principal, tenantId: string) {
    const exists = tenantId === 'acme' || tenantId === 'globex';
    if (!exists || (principal.kind === 'tenant' && principal.tenantId !== tenantId))
      throw new AppError('not_found', 'No such tenant.');
    return { id: tenantId, name: tenantId, createdAt: new Date(0) };
  },
};

/**
 * An app whose callers are named by `x-tenant` (or the operator without it), holding the
 * permissions listed in `x-permissions` (every one without it), as the auth hook would set them.
 */
function app(): FastifyInstance {
  const fastify = Fastify();
  fastify.setErrorHandler(errorHandler);
  fastify.addHook('onRoute', refuseUnscopedTenantRoutes);
  fastify.decorateRequest('principal');
  fastify.addHook('onRequest', async (request) => {
    const tenant = request.headers['x-tenant'];
    const listed = request.headers['x-permissions'];
    const permissions = new Set<Permission>(
      typeof listed === 'string' ? (listed.split(',').filter(Boolean) as Permission[]) : PERMISSIONS,
    );
    request.principal =
      typeof tenant === 'string'
        ? { kind: 'tenant', tenantId: tenant, actor: `api-key:key-${tenant}`, permissions }
        : { kind: 'operator', actor: 'operator' };
  });
  return fastify;
}

describe('tenant scope', () => {
  test('a route that authorises nothing itself answers 404 to another tenant and runs for its own', async () => {
    const fastify = app();
    let ran = 0;
    await fastify.register(tenantScope, {
      tenants,
      async routes(scope) {
        scope.post('/v1/tenants/:tenant/things', { config: { permission: 'mappings:write' } }, async () => {
          ran += 1;
          return { ok: true };
        });
      },
    });
    const post = (tenant: string, as?: string) =>
      fastify.inject({
        method: 'POST',
        url: `/v1/tenants/${tenant}/things`,
        headers: as ? { 'x-tenant': as } : {},
      });
    expect((await post('acme', 'globex')).statusCode).toBe(404);
    expect((await post('acme', 'globex')).json()).toMatchObject({ code: 'not_found' });
    expect((await post('nowhere')).statusCode).toBe(404);
    expect(ran).toBe(0);
    expect((await post('acme', 'acme')).statusCode).toBe(200);
    expect((await post('globex')).statusCode).toBe(200);
    expect(ran).toBe(2);
    await fastify.close();
  });

  test('a tenant route registered outside the scope stops the start', async () => {
    const fastify = app();
    fastify.get('/v1/tenants', async () => ({ items: [] }));
    const start = async () => {
      await fastify.register(async (plugin) => {
        plugin.get('/v1/tenants/:tenant/forgotten', async () => ({ leaked: true }));
      });
      await fastify.ready();
    };
    await expect(start()).rejects.toThrow(/must be registered in the tenant scope/);
  });

  test('a route in the scope must be a private /v1/tenants/:tenant route', async () => {
    for (const [url, config] of [
      ['/v1/runtime/elsewhere', {}],
      ['/v1/tenants/:id/things', {}],
      ['/v1/tenants/:tenant/things', { public: true }],
    ] as const) {
      const fastify = app();
      const start = async () => {
        await fastify.register(tenantScope, {
          tenants,
          async routes(scope) {
            scope.get(url, { config: { ...config, permission: 'any' } }, async () => ({}));
          },
        });
        await fastify.ready();
      };
      await expect(start(), url).rejects.toThrow(/in the tenant scope but not a private/);
    }
  });

  test('a route of the scope that declares no permission stops the start', async () => {
    for (const config of [{}, { permission: 'mappings:delete' }]) {
      const fastify = app();
      const start = async () => {
        await fastify.register(tenantScope, {
          tenants,
          async routes(scope) {
            scope.get('/v1/tenants/:tenant/things', { config: config as object }, async () => ({}));
          },
        });
        await fastify.ready();
      };
      await expect(start(), JSON.stringify(config)).rejects.toThrow(/declares no permission/);
    }
  });

  test('in its own tenant, a caller without the permission gets 403 forbidden; another tenant still 404', async () => {
    const fastify = app();
    let ran = 0;
    await fastify.register(tenantScope, {
      tenants,
      async routes(scope) {
        scope.get('/v1/tenants/:tenant/things', { config: { permission: 'mappings:read' } }, async () => {
          ran += 1;
          return {};
        });
        scope.get('/v1/tenants/:tenant/name', { config: { permission: 'any' } }, async () => ({}));
      },
    });
    const get = (path: string, tenant: string, permissions: string) =>
      fastify.inject({ url: path, headers: { 'x-tenant': tenant, 'x-permissions': permissions } });
    const refused = await get('/v1/tenants/acme/things', 'acme', 'mappings:write,identities:read');
    expect({ status: refused.statusCode, code: refused.json().code }).toEqual({
      status: 403,
      code: 'forbidden',
    });
    expect((await get('/v1/tenants/acme/things', 'globex', 'mappings:read')).statusCode).toBe(404);
    expect(ran).toBe(0);
    expect((await get('/v1/tenants/acme/things', 'acme', 'mappings:read')).statusCode).toBe(200);
    expect((await fastify.inject({ url: '/v1/tenants/acme/things' })).statusCode).toBe(200);
    expect((await get('/v1/tenants/acme/name', 'acme', '')).statusCode).toBe(200);
    expect(ran).toBe(2);
    await fastify.close();
  });
});
