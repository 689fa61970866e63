import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import type { Clock } from '../shared/clock.js';
import { sha256Hex } from '../shared/ids.js';
import type { PeopleStore, SessionRecord, SessionSubject } from '../store/index.js';
import type { Principal, TenantService } from '../tenants/service.js';
import { PERMISSIONS } from './permissions.js';
import type { SessionSchema } from './schemas.js';
import type { Grantor, PeopleService } from './service.js';

/** `GET /v1/session`. */
export type SessionView = Static<typeof SessionSchema>;

/** A portal or console link is good for one use within five minutes (API.md "People"). */
export const PORTAL_LINK_TTL_MS = 5 * 60_000;

/** The URL of a link: `<base>/v1/portal/<token>` (the HTTP API's base URL, no trailing slash needed). */
export function portalUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/v1/portal/${token}`;
}

/** Where a link lands without a `returnUrl`. */
export const UI_HOME = '/ui/';

/** `lastSeenAt` is written at most this often per session (ms): the idle timeout's resolution. */
const TOUCH_RESOLUTION_MS = 1_000;

/** Expired links and sessions are purged this long after their end (ms), on the next sign-in. */
const PURGE_AFTER_MS = 24 * 3_600_000;

/** Session lifetimes (config `sessionIdleTimeoutMs`, `sessionLifetimeMs`). */
export interface SessionOptions {
  /** A session unused this long ends (ms). */
  idleTimeoutMs: number;
  /** A session ends this long after sign-in whatever its use (ms). */
  lifetimeMs: number;
}

/** A session found for a request: who it acts as, and what `GET /v1/session` shows. */
export interface ActiveSession {
  principal: Principal;
  view: SessionView;
}

/** A session just started: the cookie value (shown to the browser only) and the session. */
export interface StartedSession {
  token: string;
  session: ActiveSession;
}

export interface SessionServiceDeps {
  store: Pick<
    PeopleStore,
    'createPortalLink' | 'openPortalLink' | 'createSession' | 'getSession' | 'touchSession' | 'deleteSession'
  >;
  people: Pick<PeopleService, 'requireMember' | 'requireManageable' | 'permissionsOf'>;
  tenants: Pick<TenantService, 'isOperatorToken'>;
  clock: Clock;
  options: SessionOptions;
}

/**
 * Browser sessions and the single-use links that start them (API.md "People"). Link tokens and
 * session ids are 256-bit random values (`twl_...`, `tws_...`); only their SHA-256 is stored, so a
 * copy of the database signs nobody in. The CSRF token of a session is derived from its id
 * ({@link csrfTokenOf}), so it needs no storage either. A member session reads its member and roles
 * on every request: a deleted or demoted member loses access at once.
 */
export class SessionService {
  readonly #deps: SessionServiceDeps;

  constructor(deps: SessionServiceDeps) {
    this.#deps = deps;
  }

  /**
   * A single-use link that signs `memberId` in (five minutes). The grantor must hold every
   * permission the member has, so a key cannot reach more through a member than it holds itself.
   * @throws AppError `not_found` (member), `forbidden`, `return_url_invalid`
   */
  async createPortalLink(
    tenantId: string,
    input: { memberId: string; returnUrl?: string; intent?: string },
    grantor: Grantor,
  ): Promise<{ token: string; expiresAt: Date }> {
    const member = await this.#deps.people.requireMember(tenantId, input.memberId);
    await this.#deps.people.requireManageable(tenantId, member, grantor);
    const returnUrl = input.returnUrl === undefined ? undefined : safeReturnPath(input.returnUrl);
    return this.#createLink({ kind: 'member', tenantId, memberId: member.id }, returnUrl, input.intent);
  }

  /** A single-use link that signs the operator in to the console (`twoway console-link`). */
  createConsoleLink(): Promise<{ token: string; expiresAt: Date }> {
    return this.#createLink({ kind: 'operator' }, undefined, undefined);
  }

  async #createLink(
    subject: SessionSubject,
    returnUrl: string | undefined,
    intent: string | undefined,
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = `twl_${randomBytes(32).toString('base64url')}`;
    const now = this.#deps.clock.now();
    const expiresAt = new Date(now.getTime() + PORTAL_LINK_TTL_MS);
    await this.#deps.store.createPortalLink(
      {
        tokenSha256: sha256Hex(token),
        subject,
        ...(returnUrl !== undefined ? { returnUrl } : {}),
        ...(intent !== undefined ? { intent } : {}),
        createdAt: now,
        expiresAt,
      },
      new Date(now.getTime() - PURGE_AFTER_MS),
    );
    return { token, expiresAt };
  }

  /**
   * Uses a link: starts its session and says where to send the browser (a same-origin path under
   * `/ui/`, with `?intent=` when the link has one).
   * @throws AppError `portal_link_invalid` for an unknown, used or expired link, or one whose member
   *   is gone (one code for all, so a probe learns nothing)
   */
  async openLink(token: string): Promise<StartedSession & { redirect: string }> {
    const invalid = new AppError(
      'portal_link_invalid',
      'This link is not valid any more; ask for a new one.',
    );
    if (!/^twl_[A-Za-z0-9_-]{43}$/.test(token)) throw invalid;
    const now = this.#deps.clock.now();
    const sessionToken = newSessionToken();
    const record = this.#newRecord(sessionToken, now);
    const link = await this.#deps.store.openPortalLink(sha256Hex(token), now, record);
    if (!link) throw invalid;
    const session = await this.#activate(sessionToken, link.subject, record, now);
    if (!session) throw invalid;
    return { token: sessionToken, session, redirect: redirectOf(link.returnUrl, link.intent) };
  }

  /**
   * Signs the operator in to the console with the operator token (compared in constant time).
   * @throws AppError `unauthorized`
   */
  async signInOperator(operatorToken: string): Promise<StartedSession> {
    if (!this.#deps.tenants.isOperatorToken(operatorToken)) {
      throw new AppError('unauthorized', 'The operator token is not valid.');
    }
    const now = this.#deps.clock.now();
    const token = newSessionToken();
    const record: SessionRecord = { ...this.#newRecord(token, now), subject: { kind: 'operator' } };
    await this.#deps.store.createSession(record, new Date(now.getTime() - PURGE_AFTER_MS));
    const session = await this.#activate(token, record.subject, record, now);
    if (!session) throw new AppError('internal_error', 'The new session could not be read.');
    return { token, session };
  }

  /**
   * The session of a cookie value, or undefined when there is none: unknown, idle longer than the
   * idle timeout, past its lifetime, or its member deleted (an ended session is deleted).
   */
  async authenticate(token: string): Promise<ActiveSession | undefined> {
    if (!/^tws_[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
    const idSha256 = sha256Hex(token);
    const record = await this.#deps.store.getSession(idSha256);
    if (!record) return undefined;
    const now = this.#deps.clock.now();
    const { idleTimeoutMs } = this.#deps.options;
    if (now >= record.expiresAt || now.getTime() - record.lastSeenAt.getTime() >= idleTimeoutMs) {
      await this.#deps.store.deleteSession(idSha256);
      return undefined;
    }
    const session = await this.#activate(token, record.subject, record, now);
    if (!session) {
      await this.#deps.store.deleteSession(idSha256);
      return undefined;
    }
    if (now.getTime() - record.lastSeenAt.getTime() >= TOUCH_RESOLUTION_MS) {
      await this.#deps.store.touchSession(idSha256, now);
    }
    return session;
  }

  /** Ends the session of a cookie value; false when there was none. */
  async end(token: string): Promise<boolean> {
    return this.#deps.store.deleteSession(sha256Hex(token));
  }

  #newRecord(token: string, now: Date): Omit<SessionRecord, 'subject'> {
    return {
      idSha256: sha256Hex(token),
      createdAt: now,
      lastSeenAt: now,
      expiresAt: new Date(now.getTime() + this.#deps.options.lifetimeMs),
    };
  }

  /** The principal and view of a session; undefined when its member no longer exists. */
  async #activate(
    token: string,
    subject: SessionSubject,
    record: Omit<SessionRecord, 'subject'>,
    now: Date,
  ): Promise<ActiveSession | undefined> {
    const times = {
      csrfToken: csrfTokenOf(token),
      expiresAt: record.expiresAt.toISOString(),
      idleExpiresAt: new Date(
        Math.min(record.expiresAt.getTime(), now.getTime() + this.#deps.options.idleTimeoutMs),
      ).toISOString(),
    };
    if (subject.kind === 'operator') {
      return {
        principal: { kind: 'operator', actor: 'operator' },
        view: { kind: 'operator', permissions: [...PERMISSIONS], ...times },
      };
    }
    // Only "no such member" ends the session; a store failure is answered as one, not as a sign-out.
    const member = await this.#deps.people
      .requireMember(subject.tenantId, subject.memberId)
      .catch((err: unknown) => {
        if (err instanceof AppError && err.code === 'not_found') return undefined;
        throw err;
      });
    if (!member) return undefined;
    const permissions = await this.#deps.people.permissionsOf(subject.tenantId, member.roles);
    return {
      principal: {
        kind: 'tenant',
        tenantId: subject.tenantId,
        actor: `member:${member.id}`,
        permissions,
        email: member.email,
      },
      view: {
        kind: 'member',
        tenant: subject.tenantId,
        memberId: member.id,
        email: member.email,
        ...(member.name !== undefined ? { name: member.name } : {}),
        permissions: PERMISSIONS.filter((p) => permissions.has(p)),
        ...times,
      },
    };
  }
}

function newSessionToken(): string {
  return `tws_${randomBytes(32).toString('base64url')}`;
}

/**
 * The CSRF token of a session: SHA-256 over a label and the session's cookie value. A page of
 * another origin cannot read it (it is only in `GET /v1/session`'s answer, which CORS keeps from
 * it), and it reveals nothing of the cookie.
 */
export function csrfTokenOf(sessionToken: string): string {
  return createHash('sha256').update('twoway/v1/csrf\0').update(sessionToken).digest('base64url');
}

/** True when `header` is the CSRF token of the session, compared in constant time. */
export function csrfMatches(sessionToken: string, header: string | undefined): boolean {
  if (header === undefined) return false;
  const expected = Buffer.from(csrfTokenOf(sessionToken));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What a return URL is resolved against to check that it stays on this origin. */
const PROBE_ORIGIN = 'https://twoway.invalid';

/**
 * A `returnUrl` as Twoway redirects to it: a path on this origin under `/ui/`, normalised by the
 * WHATWG URL parser (so `/ui/../v1` is seen as `/v1`). Anything with a scheme, a host (`//evil`),
 * a backslash (`/\evil`, which browsers read as `//`), whitespace or a control character is refused.
 * @throws AppError `return_url_invalid`
 */
export function safeReturnPath(returnUrl: string): string {
  const invalid = new AppError('return_url_invalid', 'returnUrl must be a path under /ui/ on this origin.');
  // \p{Cc}: the C0 and C1 control characters (a tab or newline would be dropped by the URL parser).
  if (!returnUrl.startsWith('/') || returnUrl.startsWith('//') || /[\\\s\p{Cc}]/u.test(returnUrl)) {
    throw invalid;
  }
  let url: URL;
  try {
    url = new URL(returnUrl, PROBE_ORIGIN);
  } catch {
    throw invalid;
  }
  if (url.origin !== PROBE_ORIGIN) throw invalid;
  if (url.pathname !== '/ui' && !url.pathname.startsWith('/ui/')) throw invalid;
  return `${url.pathname}${url.search}${url.hash}`;
}

/** Where a used link sends the browser: its return path (checked again) or `/ui/`, plus `?intent=`. */
function redirectOf(returnUrl: string | undefined, intent: string | undefined): string {
  const url = new URL(safeReturnPath(returnUrl ?? UI_HOME), PROBE_ORIGIN);
  if (intent !== undefined) url.searchParams.set('intent', intent);
  return `${url.pathname}${url.search}${url.hash}`;
}
