import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import type { SessionCookie } from '../people/routes.js';
import { csrfMatches, type SessionService } from '../people/sessions.js';
import { bearerToken, type TenantService } from '../tenants/service.js';

/** Methods that change nothing (RFC 9110 §9.2.1): no CSRF token needed. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface RequestAuthDeps {
  tenants: Pick<TenantService, 'authenticate'>;
  sessions: Pick<SessionService, 'authenticate'>;
  cookie: SessionCookie;
}

/**
 * The `onRequest` hook of every private `/v1/` route: sets `request.principal`.
 *
 * - `Authorization: Bearer` (machines) works exactly as before: the operator token or an API key.
 * - Without it, the session cookie (browsers: the portal and the console). A cookie-authenticated
 *   request with an unsafe method must carry the session's CSRF token as `Twoway-CSRF`, else
 *   `403 csrf_failed`: a page of another site can make the browser send the cookie, but it cannot
 *   read the token nor set the header without a CORS preflight Twoway does not grant.
 * - The runtime API (`/v1/runtime/...`) takes bearer tokens only, never the cookie.
 * @throws AppError `unauthorized` (no credentials, an unknown token, an ended session), `csrf_failed`
 */
export function authenticateRequest(deps: RequestAuthDeps) {
  return async (request: FastifyRequest): Promise<void> => {
    // The matched route, not the raw URL: the router decodes percent-escapes, so `/%761/tenants`
    // reaches the `/v1/tenants` handler while its raw URL does not start with `/v1/`.
    const path = request.routeOptions.url ?? request.url;
    if (!path.startsWith('/v1/') || request.routeOptions.config?.public === true) return;
    const authorization = request.headers.authorization;
    const sessionToken = request.cookies[deps.cookie.name];
    if (authorization !== undefined || sessionToken === undefined || path.startsWith('/v1/runtime/')) {
      request.principal = await deps.tenants.authenticate(bearerToken(authorization));
      return;
    }
    const session = await deps.sessions.authenticate(sessionToken);
    if (!session) throw new AppError('unauthorized', 'The session has ended: sign in again.');
    const csrf = request.headers['twoway-csrf'];
    if (
      !SAFE_METHODS.has(request.method) &&
      !csrfMatches(sessionToken, typeof csrf === 'string' ? csrf : undefined)
    ) {
      throw new AppError(
        'csrf_failed',
        "Send the session's csrfToken (GET /v1/session) as the Twoway-CSRF header.",
      );
    }
    request.principal = session.principal;
    request.browserSession = { token: sessionToken, session };
  };
}
