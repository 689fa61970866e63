import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, keyEncodings, makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { Browser } from '../helpers/browser.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { freePort } from '../helpers/nginx.js';
import { build, createTenant, OPERATOR_TOKEN, type TestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();

interface AuditEvent {
  id: string;
  at: string;
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  sourceAddress?: string;
  detail: Record<string, unknown>;
}

/** What a case does: its setup has run; `call` is the one mutating request that is measured. */
interface Prepared {
  tenant: string;
  call(): Promise<Response>;
  /** Status the call must answer. */
  status: number;
  /**
   * The audit entry it must write; `false` for the one route that stores nothing; `'no tenant'` for
   * the operator's console sign-in, which stores a session but belongs to no tenant's log.
   */
  audit:
    | false
    | 'no tenant'
    | {
        action?: string;
        objectType?: string;
        objectId?: (body: Record<string, unknown>) => string;
        actor?: string;
      };
}

type Case = (ctx: WalkContext) => Promise<Prepared>;

interface WalkContext {
  twoway: TestTwoway;
  pki: TestPki;
  tenant: string;
  apiKey: string;
  apiKeyId: string;
  secrets: string[];
  /** A valid client certificate for the tester route. */
  leafForTests: CertKey;
  uniq(prefix: string): string;
  identity(): Promise<string>;
  leaf(): Promise<CertKey>;
  json(path: string, method: string, body?: unknown, token?: string): Promise<Response>;
  /** A member of the tenant with `roles`; its id. */
  member(roles: string[]): Promise<string>;
}

const pem = (ctx: WalkContext, leaf: CertKey) => ({
  certificatePem: leaf.certPem,
  privateKeyPem: leaf.keyPem,
  chainPem: ctx.pki.intermediate.certPem,
});

/**
 * Every mutating route (POST, PUT, PATCH, DELETE under /v1 except /v1/runtime) with a way to make
 * one valid, successful call. A route the OpenAPI document lists but this table does not know fails
 * the test: a new mutating route needs an entry (and an audit note in its handler).
 */
const cases: Record<string, Case> = {
  'POST /v1/tenants': async (ctx) => {
    const id = ctx.uniq('t');
    return {
      tenant: id,
      status: 201,
      call: () => ctx.json('/v1/tenants', 'POST', { id, name: 'New tenant' }, OPERATOR_TOKEN),
      audit: { action: 'tenant.create', objectType: 'tenant', objectId: () => id, actor: 'operator' },
    };
  },
  'POST /v1/tenants/{tenant}/api-keys': async (ctx) => ({
    tenant: ctx.tenant,
    status: 201,
    call: () => ctx.json(`/v1/tenants/${ctx.tenant}/api-keys`, 'POST'),
    audit: { action: 'api_key.create', objectType: 'api_key', objectId: (b) => String(b.id) },
  }),
  'PUT /v1/tenants/{tenant}/roles/{role}': async (ctx) => {
    const role = ctx.uniq('role-');
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/roles/${role}`, 'PUT', { permissions: ['alerts:read'] }),
      audit: { action: 'role.create', objectType: 'role', objectId: () => role },
    };
  },
  'DELETE /v1/tenants/{tenant}/roles/{role}': async (ctx) => {
    const role = ctx.uniq('role-');
    await ctx.json(`/v1/tenants/${ctx.tenant}/roles/${role}`, 'PUT', { permissions: [] });
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/roles/${role}`, 'DELETE'),
      audit: { action: 'role.delete', objectType: 'role', objectId: () => role },
    };
  },
  'PUT /v1/tenants/{tenant}/members/{memberId}': async (ctx) => {
    const id = ctx.uniq('user-');
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/members/${id}`, 'PUT', {
          email: `${id}@audit.example`,
          roles: ['viewer'],
        }),
      audit: { action: 'member.create', objectType: 'member', objectId: () => id },
    };
  },
  'DELETE /v1/tenants/{tenant}/members/{memberId}': async (ctx) => {
    const id = await ctx.member([]);
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/members/${id}`, 'DELETE'),
      audit: { action: 'member.delete', objectType: 'member', objectId: () => id },
    };
  },
  'POST /v1/tenants/{tenant}/portal-links': async (ctx) => {
    const id = await ctx.member(['viewer']);
    return {
      tenant: ctx.tenant,
      status: 201,
      call: async () => {
        const response = await ctx.json(`/v1/tenants/${ctx.tenant}/portal-links`, 'POST', { memberId: id });
        const { url } = (await response.clone().json()) as { url: string };
        ctx.secrets.push(url.split('/').pop() ?? url);
        return response;
      },
      audit: { action: 'portal_link.create', objectType: 'member', objectId: () => id },
    };
  },
  'POST /v1/session': async (ctx) => ({
    tenant: ctx.tenant,
    status: 200,
    call: () =>
      new Browser(ctx.twoway.url).fetch('/v1/session', {
        method: 'POST',
        json: { operatorToken: OPERATOR_TOKEN },
      }),
    audit: 'no tenant',
  }),
  'POST /v1/session/logout': async (ctx) => {
    const id = await ctx.member(['viewer']);
    const made = await ctx.json(`/v1/tenants/${ctx.tenant}/portal-links`, 'POST', { memberId: id });
    const browser = new Browser(ctx.twoway.url);
    await browser.fetch(((await made.json()) as { url: string }).url);
    const csrf = await browser.csrfToken();
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => browser.fetch('/v1/session/logout', { method: 'POST', csrf }),
      audit: { action: 'session.end', objectType: 'member', objectId: () => id, actor: `member:${id}` },
    };
  },
  'DELETE /v1/tenants/{tenant}/api-keys/{id}': async (ctx) => {
    const made = (await (await ctx.json(`/v1/tenants/${ctx.tenant}/api-keys`, 'POST')).json()) as {
      id: string;
    };
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/api-keys/${made.id}`, 'DELETE'),
      audit: { action: 'api_key.revoke', objectType: 'api_key', objectId: () => made.id },
    };
  },
  'POST /v1/tenants/{tenant}/identities': async (ctx) => {
    const leaf = await ctx.leaf();
    const password = `p12-${ctx.uniq('pw')}`;
    ctx.secrets.push(password);
    const form = new FormData();
    form.set('name', 'uploaded');
    form.set('password', password);
    form.set('file', new Blob([new Uint8Array(makePkcs12(leaf, [ctx.pki.intermediate], password))]), 'c.p12');
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.twoway.call(`/v1/tenants/${ctx.tenant}/identities`, {
          method: 'POST',
          body: form,
          token: ctx.apiKey,
        }),
      audit: { action: 'identity.create', objectType: 'identity', objectId: (b) => String(b.id) },
    };
  },
  'PATCH /v1/tenants/{tenant}/identities/{id}': async (ctx) => {
    const id = await ctx.identity();
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}`, 'PATCH', { name: 'renamed', disabled: true }),
      audit: { action: 'identity.update', objectType: 'identity', objectId: () => id },
    };
  },
  'DELETE /v1/tenants/{tenant}/identities/{id}': async (ctx) => {
    const id = await ctx.identity();
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}`, 'DELETE'),
      audit: { action: 'identity.delete', objectType: 'identity', objectId: () => id },
    };
  },
  'POST /v1/tenants/{tenant}/identities/{id}/versions': async (ctx) => {
    const id = await ctx.identity();
    const leaf = await ctx.leaf();
    const password = `v2-${ctx.uniq('pw')}`;
    ctx.secrets.push(password);
    const pkcs12 = makePkcs12(leaf, [ctx.pki.intermediate], password).toString('base64');
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}/versions`, 'POST', { pkcs12, password }),
      audit: { action: 'identity.add_version', objectType: 'identity', objectId: () => id },
    };
  },
  'POST /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate': async (ctx) => {
    const id = await ctx.identity();
    await ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}/versions`, 'POST', {
      ...pem(ctx, await ctx.leaf()),
      activate: false,
    });
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}/versions/2/activate`, 'POST'),
      audit: { action: 'identity.activate_version', objectType: 'identity', objectId: () => id },
    };
  },
  'DELETE /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate-at': async (ctx) => {
    const id = await ctx.identity();
    await ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}/versions`, 'POST', {
      ...pem(ctx, await ctx.leaf()),
      activateAt: new Date(Date.now() + 86_400_000).toISOString(),
    });
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/identities/${id}/versions/2/activate-at`, 'DELETE'),
      audit: { action: 'identity.cancel_activation', objectType: 'identity', objectId: () => id },
    };
  },
  'POST /v1/tenants/{tenant}/mappings': async (ctx) => {
    const identityId = await ctx.identity();
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/mappings`, 'POST', {
          name: 'm',
          service: 'api',
          url: `https://api.${ctx.uniq('h')}.example/`,
          identityId,
          trustAnchorsPem: ctx.pki.root.certPem,
        }),
      audit: { action: 'mapping.create', objectType: 'mapping', objectId: (b) => String(b.id) },
    };
  },
  'PATCH /v1/tenants/{tenant}/mappings/{id}': async (ctx) => {
    const mapping = await mappingOf(ctx);
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/mappings/${mapping}`, 'PATCH', { enabled: false }),
      audit: { action: 'mapping.update', objectType: 'mapping', objectId: () => mapping },
    };
  },
  'DELETE /v1/tenants/{tenant}/mappings/{id}': async (ctx) => {
    const mapping = await mappingOf(ctx);
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/mappings/${mapping}`, 'DELETE'),
      audit: { action: 'mapping.delete', objectType: 'mapping', objectId: () => mapping },
    };
  },
  'PUT /v1/tenants/{tenant}/notification-settings': async (ctx) => ({
    tenant: ctx.tenant,
    status: 200,
    call: async () => {
      const response = await ctx.json(`/v1/tenants/${ctx.tenant}/notification-settings`, 'PUT', {
        emails: ['ops@audit.example'],
        webhookUrls: ['https://hooks.audit.example/twoway'],
        thresholdsDays: [30, 7],
        rotateWebhookSecret: true,
      });
      const body = (await response.clone().json()) as { webhookSecret?: string };
      if (body.webhookSecret) ctx.secrets.push(body.webhookSecret);
      return response;
    },
    audit: {
      action: 'notification_settings.update',
      objectType: 'notification_settings',
      objectId: () => ctx.tenant,
    },
  }),
  // Stores nothing, by design: no audit entry, no row, no revision (checked below).
  'POST /v1/tenants/{tenant}/identity-tests': async (ctx) => {
    const port = await freePort();
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/identity-tests`, 'POST', {
          ...pem(ctx, ctx.leafForTests),
          url: `https://127.0.0.1:${port}/`,
        }),
      audit: false,
    };
  },
  // Issue 3's inbound routes (API.md "Inbound"); their handlers set request.audit themselves.
  'POST /v1/tenants/{tenant}/client-certificates': async (ctx) => {
    const leaf = await ctx.leaf();
    return {
      tenant: ctx.tenant,
      status: 201,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/client-certificates`, 'POST', {
          name: 'byoc',
          certificatePem: leaf.certPem,
        }),
      audit: { objectType: 'client_certificate', objectId: (b) => String(b.id) },
    };
  },
  'POST /v1/tenants/{tenant}/certificate-signing-requests': async (ctx) => ({
    tenant: ctx.tenant,
    status: 201,
    call: () =>
      ctx.json(`/v1/tenants/${ctx.tenant}/certificate-signing-requests`, 'POST', {
        name: 'csr',
        csrPem: makeCsr(ctx),
      }),
    audit: { objectType: 'client_certificate', objectId: (b) => String(b.id) },
  }),
  'POST /v1/tenants/{tenant}/client-certificates/{id}/revoke': async (ctx) => {
    const id = await clientCertificateOf(ctx);
    return {
      tenant: ctx.tenant,
      status: 200,
      call: () =>
        ctx.json(`/v1/tenants/${ctx.tenant}/client-certificates/${id}/revoke`, 'POST', {
          reason: 'superseded',
        }),
      audit: { objectType: 'client_certificate', objectId: () => id },
    };
  },
  'DELETE /v1/tenants/{tenant}/client-certificates/{id}': async (ctx) => {
    const id = await clientCertificateOf(ctx);
    return {
      tenant: ctx.tenant,
      status: 204,
      call: () => ctx.json(`/v1/tenants/${ctx.tenant}/client-certificates/${id}`, 'DELETE'),
      audit: { objectType: 'client_certificate', objectId: () => id },
    };
  },
};

async function mappingOf(ctx: WalkContext): Promise<string> {
  const identityId = await ctx.identity();
  const response = await ctx.json(`/v1/tenants/${ctx.tenant}/mappings`, 'POST', {
    name: 'm',
    service: 'api',
    url: `https://api.${ctx.uniq('h')}.example/`,
    identityId,
  });
  return ((await response.json()) as { id: string }).id;
}

async function clientCertificateOf(ctx: WalkContext): Promise<string> {
  const leaf = await ctx.leaf();
  const response = await ctx.json(`/v1/tenants/${ctx.tenant}/client-certificates`, 'POST', {
    name: 'byoc',
    certificatePem: leaf.certPem,
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { id: string }).id;
}

function makeCsr(ctx: WalkContext): string {
  const work = tempDir('twoway-csr-');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(work.dir, 'key.pem'),
        '-subj',
        `/CN=${ctx.uniq('csr')}`,
        '-out',
        join(work.dir, 'csr.pem'),
      ],
      { stdio: 'pipe' },
    );
    ctx.secrets.push(...keyEncodings(readFileSync(join(work.dir, 'key.pem'), 'utf8')));
    return readFileSync(join(work.dir, 'csr.pem'), 'utf8');
  } finally {
    work.cleanup();
  }
}

describe.each(backends)('audit log on $name', (backend) => {
  let pki: TestPki;
  const twoway = build({ backend });
  let ctx: WalkContext;
  let counter = 0;

  beforeAll(async () => {
    pki = await makePki();
    const apiKey = await createTenant(twoway, 'audit', 'Audit');
    const first = (await (await twoway.call('/v1/tenants/audit/audit-events')).json()) as {
      items: AuditEvent[];
    };
    const apiKeyId = String(first.items[0]?.detail.apiKeyId);
    const secrets = [apiKey, OPERATOR_TOKEN];
    const leaves: CertKey[] = [];
    ctx = {
      twoway,
      pki,
      tenant: 'audit',
      apiKey,
      apiKeyId,
      secrets,
      leafForTests: await pki.leaf({ cn: 'for-tests' }),
      uniq: (prefix) => `${prefix}${++counter}x${Date.now().toString(36)}`,
      async leaf() {
        const leaf = await pki.leaf({ cn: ctx.uniq('leaf') });
        leaves.push(leaf);
        secrets.push(...keyEncodings(leaf.keyPem));
        return leaf;
      },
      async identity() {
        const response = await ctx.json('/v1/tenants/audit/identities', 'POST', {
          name: 'fixture',
          ...pem(ctx, await ctx.leaf()),
        });
        expect(response.status).toBe(201);
        return ((await response.json()) as { id: string }).id;
      },
      json: (path, method, body, token) =>
        twoway.call(path, { method, ...(body !== undefined ? { json: body } : {}), token: token ?? apiKey }),
      async member(roles) {
        const id = ctx.uniq('member-');
        const response = await ctx.json(`/v1/tenants/audit/members/${id}`, 'PUT', {
          email: `${id}@audit.example`,
          roles,
        });
        expect(response.status).toBe(201);
        return id;
      },
    };
    secrets.push(...keyEncodings(ctx.leafForTests.keyPem));
  });

  async function auditOf(tenant: string): Promise<AuditEvent[]> {
    const response = await twoway.call(`/v1/tenants/${tenant}/audit-events?limit=500`);
    if (response.status === 404) return [];
    return ((await response.json()) as { items: AuditEvent[] }).items;
  }

  test('every mutating route of the OpenAPI document writes exactly one audit entry, and none holds a secret', async () => {
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const mutating: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/') || path.startsWith('/v1/runtime/')) continue;
      for (const method of Object.keys(item)) {
        if (['post', 'put', 'patch', 'delete'].includes(method))
          mutating.push(`${method.toUpperCase()} ${path}`);
      }
    }
    // The walk is not vacuous: the routes of this project's core and lifecycle are all there.
    expect(mutating).toEqual(
      expect.arrayContaining([
        'POST /v1/tenants',
        'DELETE /v1/tenants/{tenant}/api-keys/{id}',
        'POST /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate',
        'PATCH /v1/tenants/{tenant}/mappings/{id}',
        'PUT /v1/tenants/{tenant}/notification-settings',
      ]),
    );
    const unknown = mutating.filter((route) => !(route in cases));
    expect(unknown, 'mutating routes without an entry in the audit walk table').toEqual([]);

    const tenants = new Set(['audit']);
    for (const route of mutating) {
      const make = cases[route];
      if (!make) continue;
      const prepared = await make(ctx);
      tenants.add(prepared.tenant);
      const before = await auditOf(prepared.tenant);
      const snapshot = await snapshotDatabase(twoway);
      const started = Date.now();
      const response = await prepared.call();
      const text = await response.text();
      expect(response.status, `${route}: ${text}`).toBe(prepared.status);
      const after = await auditOf(prepared.tenant);
      if (prepared.audit === false || prepared.audit === 'no tenant') {
        expect(after, route).toEqual(before);
        if (prepared.audit === false) expect(await snapshotDatabase(twoway), route).toEqual(snapshot);
        continue;
      }
      const added = after.filter((e) => !before.some((b) => b.id === e.id));
      expect(added, route).toHaveLength(1);
      const [entry] = added;
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      const want = prepared.audit;
      expect(entry, route).toMatchObject({
        actor: want.actor ?? `api-key:${ctx.apiKeyId}`,
        sourceAddress: '127.0.0.1',
        ...(want.action ? { action: want.action } : {}),
        ...(want.objectType ? { objectType: want.objectType } : {}),
        ...(want.objectId ? { objectId: want.objectId(body) } : {}),
      });
      expect(entry?.action, route).toMatch(/^[a-z_]+\.[a-z_]+$/);
      const at = Date.parse(entry?.at ?? '');
      expect(at).toBeGreaterThanOrEqual(started - 1_000);
      expect(at).toBeLessThanOrEqual(Date.now() + 1_000);
    }

    const everything = JSON.stringify(await Promise.all([...tenants].map(auditOf)));
    for (const secret of ctx.secrets)
      expect(everything.includes(secret), 'a secret in the audit log').toBe(false);
    expect(everything).not.toMatch(/PRIVATE KEY|whsec_|tw_[A-Za-z0-9_-]{20}/);
  });

  test('entries name their actor: operator, api-key:<id>, member:<id> with the e-mail of that moment', async () => {
    const id = await ctx.identity();
    const rename = (name: string, token: string) =>
      ctx.json(`/v1/tenants/audit/identities/${id}`, 'PATCH', { name }, token);
    expect((await rename('by operator', OPERATOR_TOKEN)).status).toBe(200);
    const memberId = await ctx.member(['admin']);
    const made = await ctx.json('/v1/tenants/audit/portal-links', 'POST', { memberId });
    const browser = new Browser(twoway.url);
    await browser.fetch(((await made.json()) as { url: string }).url);
    const byMember = (name: string) =>
      browser
        .csrfToken()
        .then((csrf) =>
          browser.fetch(`/v1/tenants/audit/identities/${id}`, { method: 'PATCH', csrf, json: { name } }),
        );
    expect((await byMember('by member')).status).toBe(200);
    const moved = await ctx.json(`/v1/tenants/audit/members/${memberId}`, 'PUT', {
      email: `moved-${memberId}@audit.example`,
      roles: ['admin'],
    });
    expect(moved.status).toBe(200);
    expect((await byMember('by member again')).status).toBe(200);

    const events = async (query: string) =>
      (
        (await (await twoway.call(`/v1/tenants/audit/audit-events?${query}`)).json()) as {
          items: AuditEvent[];
        }
      ).items;
    expect(
      (await events(`objectId=${id}`)).map((e) => [e.action, e.actor, e.detail.actorEmail ?? null]),
    ).toEqual([
      ['identity.update', `member:${memberId}`, `moved-${memberId}@audit.example`],
      ['identity.update', `member:${memberId}`, `${memberId}@audit.example`],
      ['identity.update', 'operator', null],
      ['identity.create', `api-key:${ctx.apiKeyId}`, null],
    ]);
    expect((await events(`objectId=${memberId}`)).map((e) => [e.action, e.actor])).toEqual([
      ['member.update', `api-key:${ctx.apiKeyId}`],
      ['session.start', `member:${memberId}`],
      ['portal_link.create', `api-key:${ctx.apiKeyId}`],
      ['member.create', `api-key:${ctx.apiKeyId}`],
    ]);
  });

  test('filters (action, objectType, objectId, since, until) and cursor paging', async () => {
    const id = await ctx.identity();
    await ctx.json(`/v1/tenants/audit/identities/${id}`, 'PATCH', { name: 'one' });
    // Instants have millisecond resolution: keep `middle` strictly between the entries.
    await new Promise((r) => setTimeout(r, 5));
    const middle = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await ctx.json(`/v1/tenants/audit/identities/${id}`, 'PATCH', { name: 'two' });
    await ctx.json(`/v1/tenants/audit/identities/${id}`, 'PATCH', { name: 'three' });
    const query = async (q: string) =>
      (await (await twoway.call(`/v1/tenants/audit/audit-events?${q}`, { token: ctx.apiKey })).json()) as {
        items: AuditEvent[];
        nextCursor?: string;
      };
    const all = (await query(`objectId=${id}`)).items;
    expect(all.map((e) => e.action)).toEqual([
      'identity.update',
      'identity.update',
      'identity.update',
      'identity.create',
    ]);
    expect((await query(`objectId=${id}&action=identity.create`)).items).toHaveLength(1);
    expect(
      (await query(`objectType=identity&objectId=${id}&since=${encodeURIComponent(middle)}`)).items,
    ).toHaveLength(2);
    expect((await query(`objectId=${id}&until=${encodeURIComponent(middle)}`)).items).toHaveLength(2);

    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const result = await query(`objectId=${id}&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...result.items.map((e) => e.id));
      cursor = result.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(all.map((e) => e.id));
    const bad = await twoway.call('/v1/tenants/audit/audit-events?cursor=nope', { token: ctx.apiKey });
    expect(bad.status).toBe(400);
    // Another tenant's key sees nothing of this tenant's log.
    const otherKey = await createTenant(twoway, ctx.uniq('o'), 'Other');
    expect((await twoway.call('/v1/tenants/audit/audit-events', { token: otherKey })).status).toBe(404);
  });
});
