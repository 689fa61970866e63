import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends, databaseText } from '../helpers/backends.js';
import { Browser } from '../helpers/browser.js';
import { ManualClock, snapshotDatabase } from '../helpers/lifecycle.js';
import {
  type BuiltTwoway,
  build,
  buildInTest,
  createTenant,
  logLines,
  OPERATOR_TOKEN,
  uploadPem,
} from '../helpers/twoway.js';

const backends = await appBackends();
const MINUTE = 60_000;
const IDLE_MS = 10 * MINUTE;
const LIFETIME_MS = 60 * MINUTE;

interface Problem {
  code: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe.each(backends)('portal links and sessions on $name', (backend) => {
  const clock = new ManualClock();
  const twoway = build({
    backend,
    clock,
    env: {
      TWOWAY_SESSION_IDLE_TIMEOUT_MS: String(IDLE_MS),
      TWOWAY_SESSION_LIFETIME_MS: String(LIFETIME_MS),
    },
  });
  let pki: TestPki;
  let acmeKey: string;
  let globexKey: string;
  let identityId: string;
  /** Every secret this suite saw, for the leak check at the end. */
  const secrets: string[] = [];
  let members = 0;

  beforeAll(async () => {
    pki = await makePki();
    acmeKey = await createTenant(twoway, 'acme');
    globexKey = await createTenant(twoway, 'globex');
    secrets.push(acmeKey, globexKey);
    const leaf = await pki.leaf({ cn: 'acme-client' });
    identityId = await uploadPem(twoway, 'acme', leaf, pki.intermediate.certPem, {
      token: acmeKey,
      name: 'acme',
    });
  });

  /** A new member of `tenant` with `roles`; its id. */
  async function member(roles: string[], tenant = 'acme', token = acmeKey): Promise<string> {
    const id = `user-${++members}`;
    const response = await twoway.call(`/v1/tenants/${tenant}/members/${id}`, {
      method: 'PUT',
      token,
      json: { email: `${id}@${tenant}.example`, name: `User ${members}`, roles },
    });
    expect(response.status).toBe(201);
    return id;
  }

  /** A portal link for `memberId`; the answer's status and body. */
  async function link(
    memberId: string,
    extra: Record<string, unknown> = {},
    tenant = 'acme',
    token = acmeKey,
  ): Promise<{ status: number; url: string; expiresAt: string; code?: string }> {
    const response = await twoway.call(`/v1/tenants/${tenant}/portal-links`, {
      method: 'POST',
      token,
      json: { memberId, ...extra },
    });
    const body = (await response.json()) as { url: string; expiresAt: string; code?: string };
    if (body.url) secrets.push(new URL(body.url).pathname.split('/').pop() ?? '');
    return { status: response.status, ...body };
  }

  /** A browser signed in as `memberId` through a new link. */
  async function signedIn(memberId: string): Promise<Browser> {
    const made = await link(memberId);
    expect(made.status).toBe(201);
    const browser = new Browser(twoway.url);
    expect((await browser.fetch(made.url)).status).toBe(303);
    secrets.push(...browser.cookies.values());
    return browser;
  }

  test('a portal link signs the member in once: HttpOnly SameSite=Lax cookie, 303 into /ui/ with the intent', async () => {
    const id = await member(['viewer']);
    const made = await link(id, { returnUrl: '/ui/identities?tab=2', intent: 'upload-certificate' });
    expect(made.status).toBe(201);
    expect(made.url).toMatch(new RegExp(`^${twoway.url}/v1/portal/twl_[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(made.expiresAt)).toBe(clock.now().getTime() + 5 * MINUTE);

    const browser = new Browser(twoway.url);
    const opened = await browser.fetch(made.url);
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/ui/identities?tab=2&intent=upload-certificate');
    expect(opened.headers.get('cache-control')).toBe('no-store');
    const [cookie] = browser.setCookies;
    expect(cookie).toMatch(/^twoway_session=tws_[A-Za-z0-9_-]{43}; /);
    const flags = (cookie ?? '').split('; ').slice(1).sort();
    expect(flags).toEqual(['HttpOnly', `Max-Age=${LIFETIME_MS / 1000}`, 'Path=/', 'SameSite=Lax']);

    const session = await browser.fetch('/v1/session');
    expect(session.status).toBe(200);
    expect(await session.json()).toMatchObject({
      kind: 'member',
      tenant: 'acme',
      memberId: id,
      email: `${id}@acme.example`,
      permissions: [
        'identities:read',
        'mappings:read',
        'connections:read',
        'client-certificates:read',
        'notifications:read',
        'alerts:read',
        'audit:read',
      ],
      csrfToken: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect((await browser.fetch('/v1/tenants/acme/identities')).status).toBe(200);
    // Single use: the same link again, from any browser, is refused.
    for (const again of [browser, new Browser(twoway.url)]) {
      const second = await again.fetch(made.url);
      expect(second.status).toBe(404);
      expect(((await second.json()) as Problem).code).toBe('portal_link_invalid');
    }
  });

  test('a link is good for five minutes; a token that was never made is refused the same way', async () => {
    const id = await member(['viewer']);
    const made = await link(id);
    clock.advance(5 * MINUTE);
    const late = await new Browser(twoway.url).fetch(made.url);
    expect(late.status).toBe(404);
    expect(((await late.json()) as Problem).code).toBe('portal_link_invalid');
    const fresh = await link(id);
    const token = new URL(fresh.url).pathname.split('/').pop() ?? '';
    const forged = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [forged, 'twl_short', `tws_${token.slice(4)}`]) {
      const response = await new Browser(twoway.url).fetch(`/v1/portal/${bad}`);
      expect(response.status, bad).toBe(404);
    }
    expect((await new Browser(twoway.url).fetch(fresh.url)).status).toBe(303);
  });

  test('links and sessions stay in their tenant', async () => {
    const acmeMember = await member(['admin']);
    const globexMember = await member(['admin'], 'globex', globexKey);
    // Another tenant's key cannot make a link here, nor can this tenant link another's member.
    expect((await link(acmeMember, {}, 'acme', globexKey)).status).toBe(404);
    const foreign = await link(globexMember);
    expect([foreign.status, foreign.code]).toEqual([404, 'not_found']);
    const browser = await signedIn(acmeMember);
    expect((await browser.fetch('/v1/tenants/acme/identities')).status).toBe(200);
    for (const path of [
      '/v1/tenants/globex',
      '/v1/tenants/globex/identities',
      '/v1/tenants/globex/members',
    ]) {
      const response = await browser.fetch(path);
      expect([path, response.status, ((await response.json()) as Problem).code]).toEqual([
        path,
        404,
        'not_found',
      ]);
    }
    const tenants = (await (await browser.fetch('/v1/tenants')).json()) as { items: { id: string }[] };
    expect(tenants.items.map((t) => t.id)).toEqual(['acme']);
  });

  test('sign-out ends the session (a copied cookie stops working) and the link cannot be replayed', async () => {
    const id = await member(['admin']);
    const made = await link(id);
    const browser = new Browser(twoway.url);
    await browser.fetch(made.url);
    const copied = new Browser(twoway.url);
    for (const [name, value] of browser.cookies) copied.cookies.set(name, value);
    const csrf = await browser.csrfToken();
    // Sign-out is a change: without the CSRF token it is refused and the session stays.
    const refused = await browser.fetch('/v1/session/logout', { method: 'POST' });
    expect([refused.status, ((await refused.json()) as Problem).code]).toEqual([403, 'csrf_failed']);
    expect((await copied.fetch('/v1/session')).status).toBe(200);
    const out = await browser.fetch('/v1/session/logout', { method: 'POST', csrf });
    expect(out.status).toBe(204);
    expect(browser.cookies.size).toBe(0);
    expect(browser.setCookies.at(-1)).toMatch(/^twoway_session=; /);
    for (const stale of [browser, copied]) {
      const response = await stale.fetch('/v1/session');
      expect([response.status, ((await response.json()) as Problem).code]).toEqual([401, 'unauthorized']);
    }
    expect((await copied.fetch('/v1/tenants/acme/identities')).status).toBe(401);
    expect((await browser.fetch(made.url)).status).toBe(404);
  });

  test('a session ends after the idle timeout without requests, and after its lifetime whatever its use', async () => {
    const id = await member(['viewer']);
    const busy = await signedIn(id);
    const idle = await signedIn(id);
    // Busy: a request every 9 minutes keeps it going, up to the lifetime (60 minutes).
    for (let minutes = 9; minutes < 60; minutes += 9) {
      clock.advance(9 * MINUTE);
      expect((await busy.fetch('/v1/session')).status, `after ${minutes} minutes`).toBe(200);
      if (minutes === 18) expect((await idle.fetch('/v1/session')).status).toBe(401);
    }
    clock.advance(6 * MINUTE - 1);
    const last = await busy.fetch('/v1/session');
    expect(last.status).toBe(200);
    expect(Date.parse(((await last.json()) as { expiresAt: string }).expiresAt)).toBe(
      clock.now().getTime() + 1,
    );
    clock.advance(1);
    expect((await busy.fetch('/v1/session')).status).toBe(401);

    // Idle: exactly the timeout after the last request it ends; a moment before, it lives on.
    const quiet = await signedIn(id);
    clock.advance(IDLE_MS - 1);
    expect((await quiet.fetch('/v1/tenants/acme')).status).toBe(200);
    clock.advance(IDLE_MS - 1);
    expect((await quiet.fetch('/v1/tenants/acme')).status).toBe(200);
    clock.advance(IDLE_MS);
    expect((await quiet.fetch('/v1/tenants/acme')).status).toBe(401);
  });

  test('a cookie-authenticated change needs the Twoway-CSRF header; reads and bearer tokens do not; the runtime API takes no cookie', async () => {
    const id = await member(['admin']);
    const browser = await signedIn(id);
    const other = await signedIn(await member(['admin']));
    const csrf = await browser.csrfToken();
    const rename = (name: string, headers: { csrf?: string; token?: string } = {}) =>
      browser.fetch(`/v1/tenants/acme/identities/${identityId}`, {
        method: 'PATCH',
        json: { name },
        ...(headers.csrf !== undefined ? { csrf: headers.csrf } : {}),
        ...(headers.token !== undefined ? { headers: { authorization: `Bearer ${headers.token}` } } : {}),
      });
    const before = await snapshotDatabase(twoway);
    for (const [what, header] of [
      ['none', undefined],
      ['empty', ''],
      ['wrong', csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))],
      ["another session's", await other.csrfToken()],
      ['the cookie itself', browser.cookies.get('twoway_session')],
    ] as const) {
      const response = await rename('forged', header === undefined ? {} : { csrf: header });
      expect([what, response.status, ((await response.json()) as Problem).code]).toEqual([
        what,
        403,
        'csrf_failed',
      ]);
    }
    expect(await snapshotDatabase(twoway)).toEqual(before);
    const done = await rename('renamed', { csrf });
    expect(done.status).toBe(200);
    expect(((await done.json()) as { name: string }).name).toBe('renamed');
    // A bearer token decides alone, as before: no CSRF token, even with a cookie beside it.
    expect((await rename('by key', { token: acmeKey })).status).toBe(200);
    // The runtime API is for machines: the cookie alone is not a credential there.
    const resolve = await browser.fetch('/v1/runtime/resolve', {
      method: 'POST',
      csrf,
      json: { items: [{ tenant: 'acme', service: 'api', url: 'https://api.acme.example/' }] },
    });
    expect(resolve.status).toBe(401);
    const forward = await browser.fetch('/v1/runtime/forward', {
      headers: { 'twoway-service': 'api', 'twoway-forward-url': 'https://api.acme.example/' },
    });
    expect(forward.status).toBe(401);
  });

  test('a demoted member loses the permission with the next request; a deleted one is signed out at once', async () => {
    const id = await member(['admin']);
    const browser = await signedIn(id);
    expect((await browser.fetch('/v1/tenants/acme/members')).status).toBe(200);
    const demote = await twoway.call(`/v1/tenants/acme/members/${id}`, {
      method: 'PUT',
      token: acmeKey,
      json: { email: `${id}@acme.example`, roles: ['viewer'] },
    });
    expect(demote.status).toBe(200);
    const refused = await browser.fetch('/v1/tenants/acme/members');
    expect([refused.status, ((await refused.json()) as Problem).code]).toEqual([403, 'forbidden']);
    expect((await browser.fetch('/v1/tenants/acme/identities')).status).toBe(200);
    const second = await signedIn(id);
    const deleted = await twoway.call(`/v1/tenants/acme/members/${id}`, { method: 'DELETE', token: acmeKey });
    expect(deleted.status).toBe(204);
    for (const gone of [browser, second]) {
      expect((await gone.fetch('/v1/session')).status).toBe(401);
      expect((await gone.fetch('/v1/tenants/acme/identities')).status).toBe(401);
    }
    // Nothing of them is left in the store.
    for (const gone of [browser, second]) {
      expect(await twoway.store.getSession(sha256(gone.cookies.get('twoway_session') ?? ''))).toBeUndefined();
    }
  });

  test('nobody grants more than it holds: a key with members:write alone cannot make or sign in an admin', async () => {
    const put = (role: string, permissions: string[]) =>
      twoway.call(`/v1/tenants/acme/roles/${role}`, { method: 'PUT', token: acmeKey, json: { permissions } });
    expect((await put('people-manager', ['members:write'])).status).toBe(201);
    const created = await twoway.call('/v1/tenants/acme/api-keys', {
      method: 'POST',
      token: acmeKey,
      json: { name: 'people sync', roles: ['people-manager'] },
    });
    const { apiKey: sync } = (await created.json()) as { apiKey: string };
    secrets.push(sync);
    const admin = await member(['admin']);
    const plain = await member([]);
    const attempts: [string, Promise<Response>][] = [
      [
        'a member with admin',
        twoway.call('/v1/tenants/acme/members/sneaky', {
          method: 'PUT',
          token: sync,
          json: { email: 'sneaky@acme.example', roles: ['admin'] },
        }),
      ],
      [
        'a role with more',
        twoway.call('/v1/tenants/acme/roles/more', {
          method: 'PUT',
          token: sync,
          json: { permissions: ['members:write', 'identities:write'] },
        }),
      ],
      [
        'a link for an admin',
        twoway.call('/v1/tenants/acme/portal-links', {
          method: 'POST',
          token: sync,
          json: { memberId: admin },
        }),
      ],
      [
        'an admin re-addressed',
        twoway.call(`/v1/tenants/acme/members/${admin}`, {
          method: 'PUT',
          token: sync,
          json: { email: 'attacker@evil.example', roles: [] },
        }),
      ],
      [
        'an admin deleted',
        twoway.call(`/v1/tenants/acme/members/${admin}`, { method: 'DELETE', token: sync }),
      ],
    ];
    for (const [what, attempt] of attempts) {
      const response = await attempt;
      expect([what, response.status, ((await response.json()) as Problem).code]).toEqual([
        what,
        403,
        'forbidden',
      ]);
    }
    // Within what it holds, it works.
    expect((await link(plain, {}, 'acme', sync)).status).toBe(201);
    const promote = await twoway.call(`/v1/tenants/acme/members/${plain}`, {
      method: 'PUT',
      token: sync,
      json: { email: `${plain}@acme.example`, roles: ['people-manager'] },
    });
    expect(promote.status).toBe(200);
    const unknown = await twoway.call(`/v1/tenants/acme/members/${plain}`, {
      method: 'PUT',
      token: acmeKey,
      json: { email: `${plain}@acme.example`, roles: ['no-such-role'] },
    });
    expect([unknown.status, ((await unknown.json()) as Problem).code]).toEqual([422, 'unknown_role']);
    const held = await twoway.call('/v1/tenants/acme/roles/people-manager', {
      method: 'DELETE',
      token: acmeKey,
    });
    expect([held.status, ((await held.json()) as Problem).code]).toEqual([409, 'role_in_use']);
    const builtIn = await put('admin', []);
    expect([builtIn.status, ((await builtIn.json()) as Problem).code]).toEqual([409, 'built_in_role']);
  });

  test('returnUrl must be a path under /ui/ on this origin', async () => {
    const id = await member(['viewer']);
    for (const bad of [
      'https://evil.example/ui/',
      '//evil.example/ui/',
      '/\\evil.example/ui/',
      '/ui/../v1/tenants',
      '/ui/%2e%2e/v1/session',
      '/v1/session',
      'ui/identities',
      '/ui/\r\nSet-Cookie: x=y',
      '/ui/\tx',
      '/ui/a b',
      'javascript:alert(1)',
    ]) {
      const made = await link(id, { returnUrl: bad });
      expect([bad, made.status, made.code]).toEqual([bad, 422, 'return_url_invalid']);
    }
    for (const [good, location] of [
      ['/ui', '/ui'],
      ['/ui/connections/new?x=1#top', '/ui/connections/new?x=1#top'],
      ['/ui/a%20b', '/ui/a%20b'],
    ]) {
      const made = await link(id, { returnUrl: good });
      const response = await new Browser(twoway.url).fetch(made.url);
      expect([good, response.headers.get('location')]).toEqual([good, location]);
    }
  });

  test('the operator signs in to the console with the operator token or a console link', async () => {
    const wrong = await new Browser(twoway.url).fetch('/v1/session', {
      method: 'POST',
      json: { operatorToken: `${OPERATOR_TOKEN}x` },
    });
    expect([wrong.status, ((await wrong.json()) as Problem).code]).toEqual([401, 'unauthorized']);
    const console = new Browser(twoway.url);
    const signIn = await console.fetch('/v1/session', {
      method: 'POST',
      json: { operatorToken: OPERATOR_TOKEN },
    });
    expect(signIn.status).toBe(200);
    const view = (await signIn.json()) as { kind: string; permissions: string[]; csrfToken: string };
    expect(view.kind).toBe('operator');
    expect(view.permissions).toHaveLength(15);
    secrets.push(...console.cookies.values());
    const tenants = (await (await console.fetch('/v1/tenants')).json()) as { items: { id: string }[] };
    expect(tenants.items.map((t) => t.id)).toEqual(expect.arrayContaining(['acme', 'globex']));
    const refused = await console.fetch('/v1/tenants', {
      method: 'POST',
      json: { id: 'console-made', name: 'C' },
    });
    expect(refused.status).toBe(403);
    const made = await console.fetch('/v1/tenants', {
      method: 'POST',
      csrf: view.csrfToken,
      json: { id: 'console-made', name: 'C' },
    });
    expect(made.status).toBe(201);
    secrets.push(((await made.json()) as { apiKey: string }).apiKey);

    const { token } = await twoway.services.sessions.createConsoleLink();
    secrets.push(token);
    const byLink = new Browser(twoway.url);
    const opened = await byLink.fetch(`/v1/portal/${token}`);
    expect([opened.status, opened.headers.get('location')]).toEqual([303, '/ui/']);
    expect(await (await byLink.fetch('/v1/session')).json()).toMatchObject({ kind: 'operator' });
    expect((await byLink.fetch('/v1/tenants/globex/members')).status).toBe(200);
  });

  test('nothing secret is stored or logged: link tokens and session ids only as SHA-256, API keys never', async () => {
    const id = await member(['viewer']);
    const made = await link(id);
    const token = new URL(made.url).pathname.split('/').pop() ?? '';
    const browser = new Browser(twoway.url);
    await browser.fetch(made.url);
    const sessionId = browser.cookies.get('twoway_session') ?? '';
    secrets.push(...browser.cookies.values(), await browser.csrfToken());
    const text = await databaseText(backend.name, twoway.dataDir, twoway.config.databaseUrl);
    expect(text.includes(sha256(token)), 'the link is stored by hash').toBe(true);
    expect(text.includes(sha256(sessionId)), 'the session is stored by hash').toBe(true);
    const logs = logLines.join('\n');
    expect(secrets.length).toBeGreaterThan(20);
    for (const secret of secrets.filter((s) => s.length >= 20)) {
      expect(text.includes(secret), `stored: ${secret.slice(0, 8)}...`).toBe(false);
      expect(logs.includes(secret), `logged: ${secret.slice(0, 8)}...`).toBe(false);
    }
  });
});

describe('session cookies and operator sign-in on a deployment reached over https', () => {
  test('behind an https public URL the cookie is __Host- prefixed and Secure, and links start with that URL', async () => {
    const twoway: BuiltTwoway = await buildInTest({
      env: { TWOWAY_PUBLIC_URL: 'https://twoway.example', TWOWAY_SESSION_SIGN_IN_MAX_PER_MINUTE: '3' },
    });
    const key = await createTenant(twoway, 'secure');
    await twoway.call('/v1/tenants/secure/members/u1', {
      method: 'PUT',
      token: key,
      json: { email: 'u1@secure.example', roles: ['viewer'] },
    });
    const made = (await (
      await twoway.call('/v1/tenants/secure/portal-links', {
        method: 'POST',
        token: key,
        json: { memberId: 'u1' },
      })
    ).json()) as { url: string };
    expect(made.url).toMatch(/^https:\/\/twoway\.example\/v1\/portal\/twl_/);
    const browser = new Browser(twoway.url);
    expect((await browser.fetch(made.url)).status).toBe(303);
    const [cookie = ''] = browser.setCookies;
    expect(cookie).toMatch(/^__Host-twoway_session=tws_/);
    expect(cookie.split('; ').slice(1).sort()).toEqual([
      'HttpOnly',
      'Max-Age=43200',
      'Path=/',
      'SameSite=Lax',
      'Secure',
    ]);
    expect(cookie).not.toMatch(/domain=/i);
    expect(await (await browser.fetch('/v1/session')).json()).toMatchObject({
      kind: 'member',
      memberId: 'u1',
    });
    // The unprefixed name is not this deployment's cookie.
    const plain = new Browser(twoway.url);
    plain.cookies.set('twoway_session', browser.cookies.get('__Host-twoway_session') ?? '');
    expect((await plain.fetch('/v1/session')).status).toBe(401);

    // Operator sign-in is rate-limited per address: three a minute here, then 429 even with the token.
    const attempt = (operatorToken: string) =>
      new Browser(twoway.url).fetch('/v1/session', { method: 'POST', json: { operatorToken } });
    expect((await attempt('wrong-guess-0123456789')).status).toBe(401);
    expect((await attempt('wrong-guess-1234567890')).status).toBe(401);
    expect((await attempt(OPERATOR_TOKEN)).status).toBe(200);
    const limited = await attempt(OPERATOR_TOKEN);
    expect([limited.status, ((await limited.json()) as Problem).code]).toEqual([429, 'rate_limited']);
  });
});
