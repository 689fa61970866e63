import type { FastifyInstance, FastifyPluginAsync, RouteOptions } from 'fastify';
import { AppError } from '../errors/app-error.js';
import type { TenantService } from '../tenants/service.js';

/** Set on the scope (and so seen by every plugin registered in it) by {@link tenantScope}. */
const IN_TENANT_SCOPE = 'twowayTenantScope';

/** A route of one tenant: `/v1/tenants/:tenant` and everything below it. */
const SCOPED_PATH = /^\/v1\/tenants\/:tenant(\/|$)/;

export interface TenantScopeOptions {
  tenants: Pick<TenantService, 'authorize'>;
  /** Registers the tenant routes (domain plugins) on the scope. */
  routes(scope: FastifyInstance): Promise<void>;
}

/**
 * The one place where tenant routes are authorised: an encapsulated plugin whose `preHandler`
 * calls `tenants.authorize(request.principal, request.params.tenant)` before any handler of a route
 * registered in it runs. Another tenant's key gets `404 not_found`, exactly as a tenant that does
 * not exist; the operator token may act on every existing tenant (TenantService.authorize).
 *
 * It runs after validation (as the handlers' own calls did), so a malformed request still answers
 * `400` whoever sends it, and before any upload is read. Every route registered in the scope must
 * be under `/v1/tenants/:tenant` and not public, or registration throws; {@link refuseUnscopedTenantRoutes}
 * makes the opposite hold, so a new tenant route cannot skip the check.
 */
export const tenantScope: FastifyPluginAsync<TenantScopeOptions> = async (scope, { tenants, routes }) => {
  scope.decorate(IN_TENANT_SCOPE, true);
  scope.addHook('onRoute', (route: RouteOptions) => {
    if (!SCOPED_PATH.test(route.url) || route.config?.public === true) {
      throw new Error(
        `${route.method} ${route.url} is in the tenant scope but not a private /v1/tenants/:tenant route`,
      );
    }
  });
  scope.addHook('preHandler', async (request) => {
    const tenant = (request.params as { tenant?: unknown } | undefined)?.tenant;
    if (typeof tenant !== 'string') throw new AppError('not_found', 'No such tenant.');
    await tenants.authorize(request.principal, tenant);
  });
  await routes(scope);
};

/**
 * An `onRoute` hook for the root instance: a route under `/v1/tenants/` registered anywhere but in
 * {@link tenantScope} throws at start-up, so a tenant route is refused by default rather than open.
 */
export function refuseUnscopedTenantRoutes(this: FastifyInstance, route: RouteOptions): void {
  if (route.url.startsWith('/v1/tenants/') && !this.hasDecorator(IN_TENANT_SCOPE)) {
    throw new Error(
      `${route.method} ${route.url} must be registered in the tenant scope (http/tenant-scope.ts)`,
    );
  }
}
