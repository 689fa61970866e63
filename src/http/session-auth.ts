import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import type { SessionCookie } from '../people/routes.js';
import { csrfMatches, type SessionService } from '../people/sessions.js';

/** Methods that change nothing (RFC 9110 §9.2.1): no CSRF token needed. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CookieAuthDeps {
  sessions: Pick<SessionService, 'authenticate'>;
  cookie: SessionCookie;
}

/**
 * The browser's way into a private `/v1/` route, tried by the auth hook (http/app.ts) before the
 * bearer token: true when the request was authenticated by its session cookie (`request.principal`
 * and `request.browserSession` are then set), false when it is for the bearer token to decide.
 *
 * - A request with `Authorization` is a machine's: the bearer token decides exactly as before,
 *   whatever cookie comes along. So do requests without the cookie.
 * - The runtime API (`/v1/runtime/...`) takes bearer tokens only, never the cookie.
 * - A cookie-authenticated request with an unsafe method must carry the session's CSRF token as
 *   `Twoway-CSRF`, else `403 csrf_failed`: a page of another site can make the browser send the
 *   cookie, but it can neither read the token nor set the header without a CORS preflight, which
 *   Twoway does not grant.
 * @throws AppError `unauthorized` (the session has ended), `csrf_failed`
 */
export function cookieAuth(deps: CookieAuthDeps) {
  return async (request: FastifyRequest, path: string): Promise<boolean> => {
    const sessionToken = request.cookies[deps.cookie.name];
    if (request.headers.authorization !== undefined || sessionToken === undefined) return false;
    if (path.startsWith('/v1/runtime/')) return false;
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
    return true;
  };
}
