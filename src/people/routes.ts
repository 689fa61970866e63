// Type augmentations only: the plugins themselves are registered by http/app.ts.
import type {} from '@fastify/cookie';
import type {} from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import {
  apiKeyCreated,
  apiKeyRevoked,
  memberDeleted,
  memberSaved,
  portalLinkCreated,
  roleDeleted,
  roleSaved,
  sessionEnded,
  sessionStarted,
} from './audit.js';
import {
  ApiKeyListItemSchema,
  ApiKeyParams,
  CreateApiKeyBody,
  CreatedApiKeySchema,
  CreatePortalLinkBody,
  MemberParams,
  MemberSchema,
  OperatorSignInBody,
  PageQuery,
  PortalLinkSchema,
  PutMemberBody,
  PutRoleBody,
  RoleParams,
  RoleSchema,
  SessionSchema,
} from './schemas.js';
import { grantorOf, type PeopleService } from './service.js';
import { type ActiveSession, portalUrl, type SessionService, type StartedSession } from './sessions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The browser session the request was authenticated by (session cookie), if any. */
    browserSession?: { token: string; session: ActiveSession };
  }
}

/** The session cookie: `__Host-` prefixed (Secure, Path=/, no Domain) behind https. */
export interface SessionCookie {
  name: string;
  /** Set when Twoway is reached over https (TWOWAY_PUBLIC_URL): then also `Secure` and `__Host-`. */
  secure: boolean;
  /** Max-Age (s): the session's absolute lifetime. */
  maxAgeSeconds: number;
}

/** The cookie of {@link SessionCookie} for a deployment reached over `publicUrl`. */
export function sessionCookie(publicUrl: string | undefined, lifetimeMs: number): SessionCookie {
  const secure = publicUrl?.startsWith('https:') === true;
  return {
    name: secure ? '__Host-twoway_session' : 'twoway_session',
    secure,
    maxAgeSeconds: Math.floor(lifetimeMs / 1000),
  };
}

/** The base URL of links: TWOWAY_PUBLIC_URL, else the origin the request was sent to. */
function baseUrlOf(request: FastifyRequest, publicUrl: string | undefined): string {
  return publicUrl ?? `${request.protocol}://${request.host}`;
}

export interface PeopleRouteOptions {
  people: PeopleService;
  sessions: SessionService;
  publicUrl?: string | undefined;
}

const Page = { querystring: PageQuery };

/**
 * `/v1/tenants/{tenant}/roles`, `members`, `api-keys` and `portal-links`; registered in the tenant
 * scope (http/tenant-scope.ts), which authorises the tenant and the declared permission. Granting
 * is further bounded by the caller's own permissions (see `Grantor` in service.ts).
 */
export const peopleRoutes: FastifyPluginAsyncTypebox<PeopleRouteOptions> = async (app, options) => {
  const { people, sessions, publicUrl } = options;
  app.addSchema(RoleSchema);
  app.addSchema(MemberSchema);
  const tags = ['people'];
  const members = { permission: 'members:write' } as const;
  const keys = { permission: 'api-keys:write' } as const;

  app.get(
    '/v1/tenants/:tenant/roles',
    {
      config: members,
      schema: {
        tags,
        summary: 'Roles, built-in (admin, viewer) and custom, ordered by name',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(Type.Ref('Role')), ...problemResponses },
      },
    },
    async (request) => people.listRoles(request.params.tenant, request.query),
  );

  app.get(
    '/v1/tenants/:tenant/roles/:role',
    {
      config: members,
      schema: { tags, params: RoleParams, response: { 200: Type.Ref('Role'), ...problemResponses } },
    },
    async (request) => people.getRole(request.params.tenant, request.params.role),
  );

  app.put(
    '/v1/tenants/:tenant/roles/:role',
    {
      config: members,
      schema: {
        tags,
        summary: 'Create or replace a custom role (at most the permissions the caller holds)',
        params: RoleParams,
        body: PutRoleBody,
        response: {
          200: Type.Ref('Role'),
          201: Type.Ref('Role'),
          ...problemResponses,
          409: Type.Ref('Problem'),
        },
      },
    },
    async (request, reply) => {
      const { tenant, role: name } = request.params;
      const { created, role } = await people.putRole(
        tenant,
        name,
        request.body,
        grantorOf(request.principal),
      );
      request.audit = roleSaved(role, created);
      return reply.code(created ? 201 : 200).send(role);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/roles/:role',
    {
      config: members,
      schema: {
        tags,
        summary: 'Delete a custom role (409 role_in_use while a member or API key holds it)',
        params: RoleParams,
        response: { 204: Type.Null(), ...problemResponses, 409: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      await people.deleteRole(request.params.tenant, request.params.role);
      request.audit = roleDeleted(request.params.role);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/tenants/:tenant/members',
    {
      config: members,
      schema: {
        tags,
        summary: 'Members, ordered by id',
        params: TenantParams,
        ...Page,
        response: { 200: Collection(Type.Ref('Member')), ...problemResponses },
      },
    },
    async (request) => people.listMembers(request.params.tenant, request.query),
  );

  app.get(
    '/v1/tenants/:tenant/members/:memberId',
    {
      config: members,
      schema: { tags, params: MemberParams, response: { 200: Type.Ref('Member'), ...problemResponses } },
    },
    async (request) => people.getMember(request.params.tenant, request.params.memberId),
  );

  app.put(
    '/v1/tenants/:tenant/members/:memberId',
    {
      config: members,
      schema: {
        tags,
        summary: "Create or replace a member under the platform's own user id (201 new, 200 replaced)",
        params: MemberParams,
        body: PutMemberBody,
        response: {
          200: Type.Ref('Member'),
          201: Type.Ref('Member'),
          ...problemResponses,
          422: Type.Ref('Problem'),
        },
      },
    },
    async (request, reply) => {
      const { tenant, memberId } = request.params;
      const { created, member } = await people.putMember(
        tenant,
        memberId,
        request.body,
        grantorOf(request.principal),
      );
      request.audit = memberSaved(member, created);
      return reply.code(created ? 201 : 200).send(member);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/members/:memberId',
    {
      config: members,
      schema: {
        tags,
        summary: "Delete a member; ends the member's sessions at once",
        params: MemberParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const { tenant, memberId } = request.params;
      await people.deleteMember(tenant, memberId, grantorOf(request.principal));
      request.audit = memberDeleted(memberId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/v1/tenants/:tenant/portal-links',
    {
      config: members,
      schema: {
        tags,
        summary: 'A single-use link (five minutes) that signs the member in to the tenant portal',
        params: TenantParams,
        body: CreatePortalLinkBody,
        response: { 201: PortalLinkSchema, ...problemResponses, 422: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      const { tenant } = request.params;
      const { token, expiresAt } = await sessions.createPortalLink(
        tenant,
        request.body,
        grantorOf(request.principal),
      );
      request.audit = portalLinkCreated(request.body.memberId, expiresAt);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        url: portalUrl(baseUrlOf(request, publicUrl), token),
        expiresAt: expiresAt.toISOString(),
      });
    },
  );

  app.get(
    '/v1/tenants/:tenant/api-keys',
    {
      config: keys,
      schema: {
        tags,
        summary: 'API keys (never their secrets), ordered by id',
        params: TenantParams,
        ...Page,
        response: { 200: Collection(ApiKeyListItemSchema), ...problemResponses },
      },
    },
    async (request) => people.listApiKeys(request.params.tenant, request.query),
  );

  app.post(
    '/v1/tenants/:tenant/api-keys',
    {
      config: keys,
      // The body is optional (a key with the defaults): none reads as `{}` rather than failing validation.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        tags,
        summary: 'Create an API key with roles (default ["admin"]); the key is shown once',
        params: TenantParams,
        body: CreateApiKeyBody,
        response: { 201: CreatedApiKeySchema, ...problemResponses, 422: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      const created = await people.createApiKey(
        request.params.tenant,
        request.body,
        grantorOf(request.principal),
      );
      request.audit = apiKeyCreated(created);
      return reply.code(201).send(created);
    },
  );

  app.delete(
    '/v1/tenants/:tenant/api-keys/:id',
    {
      config: keys,
      schema: {
        tags,
        summary: 'Revoke an API key (at once, in every process)',
        params: ApiKeyParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await people.revokeApiKey(request.params.tenant, request.params.id, grantorOf(request.principal));
      request.audit = apiKeyRevoked(request.params.id);
      return reply.code(204).send(null);
    },
  );
};

export interface SessionRouteOptions {
  sessions: SessionService;
  cookie: SessionCookie;
  /** Operator sign-ins allowed per minute and address. */
  signInMaxPerMinute: number;
}

/**
 * `/v1/session` (who is signed in, operator sign-in, sign-out) and `/v1/portal/{token}` (a portal or
 * console link: starts the session and redirects into `/ui/`). The session cookie is `HttpOnly`,
 * `SameSite=Lax`, `Path=/`, and `Secure` with the `__Host-` prefix behind https.
 */
export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRouteOptions> = async (app, options) => {
  const { sessions, cookie, signInMaxPerMinute } = options;
  const tags = ['session'];

  const setCookie = (reply: FastifyReply, token: string) =>
    reply.setCookie(cookie.name, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: cookie.secure,
      maxAge: cookie.maxAgeSeconds,
    });
  /** Ends a session the browser already had, so a new sign-in replaces it rather than adds one. */
  const endPrevious = async (request: FastifyRequest) => {
    const previous = request.cookies[cookie.name];
    if (previous !== undefined) await sessions.end(previous);
  };
  const started = (reply: FastifyReply, { token }: StartedSession) => {
    setCookie(reply, token);
    reply.header('cache-control', 'no-store');
  };

  app.get(
    '/v1/session',
    {
      schema: {
        tags,
        summary: 'Who is signed in (session cookie), with the permissions and the CSRF token',
        response: { 200: SessionSchema, ...problemResponses },
      },
    },
    async (request, reply) => {
      if (!request.browserSession) throw new AppError('unauthorized', 'No session: sign in first.');
      reply.header('cache-control', 'no-store');
      return request.browserSession.session.view;
    },
  );

  app.post(
    '/v1/session',
    {
      config: {
        public: true,
        rateLimit: { max: signInMaxPerMinute, timeWindow: 60_000 },
      },
      schema: {
        tags,
        summary: 'Operator console sign-in with the operator token (rate-limited per address)',
        security: [],
        body: OperatorSignInBody,
        response: { 200: SessionSchema, ...problemResponses, 429: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      const signedIn = await sessions.signInOperator(request.body.operatorToken);
      await endPrevious(request);
      started(reply, signedIn);
      return signedIn.session.view;
    },
  );

  app.post(
    '/v1/session/logout',
    {
      schema: {
        tags,
        summary: 'Sign out: ends the session and clears the cookie',
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      const current = request.browserSession;
      if (!current) throw new AppError('unauthorized', 'No session: sign in first.');
      await sessions.end(current.token);
      const { view } = current.session;
      if (view.tenant !== undefined && view.memberId !== undefined) {
        request.audit = { ...sessionEnded(view.memberId), tenantId: view.tenant };
      }
      reply.clearCookie(cookie.name, { path: '/', httpOnly: true, sameSite: 'lax', secure: cookie.secure });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/portal/:token',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Open a portal or console link: sets the session cookie and redirects into /ui/ (303)',
        security: [],
        params: Type.Object({ token: Type.String({ maxLength: 100 }) }),
        response: { 303: Type.Null(), 404: Type.Ref('Problem') },
      },
    },
    async (request, reply) => {
      const opened = await sessions.openLink(request.params.token);
      await endPrevious(request);
      started(reply, opened);
      const { principal, view } = opened.session;
      if (view.tenant !== undefined && view.memberId !== undefined) {
        // The request now acts as the member: the audit hook names the member as the actor.
        request.principal = principal;
        request.audit = { ...sessionStarted(view.memberId), tenantId: view.tenant };
      }
      reply.header('referrer-policy', 'no-referrer');
      return reply.redirect(opened.redirect, 303);
    },
  );
};
