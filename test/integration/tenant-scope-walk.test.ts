import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PERMISSIONS, type Permission, type RoutePermission } from '../../src/people/permissions.js';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { makeCsr } from '../helpers/edge-clients.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { build, createTenant, OPERATOR_TOKEN } from '../helpers/twoway.js';

const DAY_MS = 86_400_000;

/** One object of each kind in the tenant under attack, for the `{id}` and `{version}` of a path. */
interface Objects {
  identityId: string;
  mappingId: string;
  clientCertificateId: string;
  /** Without roles, so that a key holding only `api-keys:write` may revoke it. */
  apiKeyId: string;
  /** Without roles, so that a key holding only `members:write` may act on it. */
  memberId: string;
  /** A custom role nobody holds, so that it may be deleted. */
  role: string;
}

/** How to call one route: its path parameters besides `{tenant}`, and a body the schema accepts. */
interface Probe {
  params?: Record<string, string>;
  json?: unknown;
}

interface WalkContext {
  pki: TestPki;
  /** A fresh leaf certificate and key, as the JSON upload takes them. */
  upload(): Promise<Record<string, string>>;
  csrPem: string;
}

/** A route's permission (as it must declare it) and a request its schema accepts. */
interface RouteCase {
  permission: RoutePermission;
  probe(o: Objects, ctx: WalkContext): Promise<Probe> | Probe;
}

const identity = (o: Objects): Probe => ({ params: { id: o.identityId } });
const mapping = (o: Objects): Probe => ({ params: { id: o.mappingId } });
const clientCertificate = (o: Objects): Probe => ({ params: { id: o.clientCertificateId } });
const version2 = (o: Objects): Probe => ({ params: { id: o.identityId, version: '2' } });
const member = (o: Objects): Probe => ({ params: { memberId: o.memberId } });
const role = (o: Objects): Probe => ({ params: { role: o.role } });
const none = (): Probe => ({});
const route = (permission: RoutePermission, probe: RouteCase['probe'] = none): RouteCase => ({
  permission,
  probe,
});

/**
 * Every tenant route (`/v1/tenants/{tenant}` and below) with the permission it must need and a
 * request the route's schema accepts, made so that a caller holding only that permission may make
 * it (no role, member or key that would grant more). A route of the OpenAPI document that this table
 * does not know fails the walk: a new tenant route needs a line here, and is then checked like the
 * others.
 */
const routes: Record<string, RouteCase> = {
  'GET /v1/tenants/{tenant}': route('any'),
  'GET /v1/tenants/{tenant}/api-keys': route('api-keys:write'),
  'POST /v1/tenants/{tenant}/api-keys': route('api-keys:write', () => ({
    json: { name: 'walk', roles: [] },
  })),
  'DELETE /v1/tenants/{tenant}/api-keys/{id}': route('api-keys:write', (o) => ({
    params: { id: o.apiKeyId },
  })),
  'POST /v1/tenants/{tenant}/identities': route('identities:write', async (_o, ctx) => ({
    json: { name: 'new', ...(await ctx.upload()) },
  })),
  'GET /v1/tenants/{tenant}/identities': route('identities:read'),
  'GET /v1/tenants/{tenant}/identities/{id}': route('identities:read', identity),
  'PATCH /v1/tenants/{tenant}/identities/{id}': route('identities:write', (o) => ({
    ...identity(o),
    json: { disabled: true },
  })),
  'DELETE /v1/tenants/{tenant}/identities/{id}': route('identities:write', identity),
  'POST /v1/tenants/{tenant}/identities/{id}/versions': route('identities:write', async (o, ctx) => ({
    ...identity(o),
    json: await ctx.upload(),
  })),
  'POST /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate': route(
    'identities:write',
    version2,
  ),
  'DELETE /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate-at': route(
    'identities:write',
    version2,
  ),
  'POST /v1/tenants/{tenant}/mappings': route('mappings:write', (o) => ({
    json: { name: 'new', service: 'api', url: 'https://new.walk.example/', identityId: o.identityId },
  })),
  'GET /v1/tenants/{tenant}/mappings': route('mappings:read'),
  'GET /v1/tenants/{tenant}/mappings/{id}': route('mappings:read', mapping),
  'PATCH /v1/tenants/{tenant}/mappings/{id}': route('mappings:write', (o) => ({
    ...mapping(o),
    json: { name: 'renamed' },
  })),
  'DELETE /v1/tenants/{tenant}/mappings/{id}': route('mappings:write', mapping),
  'GET /v1/tenants/{tenant}/alerts': route('alerts:read'),
  'GET /v1/tenants/{tenant}/notification-settings': route('notifications:read'),
  'PUT /v1/tenants/{tenant}/notification-settings': route('notifications:write', () => ({
    json: { emails: ['ops@walk.example'], webhookUrls: [] },
  })),
  'GET /v1/tenants/{tenant}/notifications': route('notifications:read'),
  'GET /v1/tenants/{tenant}/audit-events': route('audit:read'),
  // Port 1 on loopback: nothing listens, so the tester answers at once (verdict unreachable).
  'POST /v1/tenants/{tenant}/identity-tests': route('identities:write', (o) => ({
    json: { url: 'https://127.0.0.1:1/', identityId: o.identityId, timeoutMs: 1000 },
  })),
  'POST /v1/tenants/{tenant}/client-certificates': route('client-certificates:write', async (_o, ctx) => ({
    json: { name: 'new', certificatePem: (await ctx.upload()).certificatePem },
  })),
  'GET /v1/tenants/{tenant}/client-certificates': route('client-certificates:read'),
  'POST /v1/tenants/{tenant}/certificate-signing-requests': route('client-certificates:write', (_o, ctx) => ({
    json: { csrPem: ctx.csrPem },
  })),
  'GET /v1/tenants/{tenant}/client-certificates/{id}': route('client-certificates:read', clientCertificate),
  'DELETE /v1/tenants/{tenant}/client-certificates/{id}': route(
    'client-certificates:write',
    clientCertificate,
  ),
  'POST /v1/tenants/{tenant}/client-certificates/{id}/revoke': route('client-certificates:write', (o) => ({
    ...clientCertificate(o),
    json: { reason: 'superseded' },
  })),
  'GET /v1/tenants/{tenant}/roles': route('members:write'),
  'GET /v1/tenants/{tenant}/roles/{role}': route('members:write', role),
  'PUT /v1/tenants/{tenant}/roles/{role}': route('members:write', (o) => ({
    ...role(o),
    json: { description: 'walked', permissions: [] },
  })),
  'DELETE /v1/tenants/{tenant}/roles/{role}': route('members:write', role),
  'GET /v1/tenants/{tenant}/members': route('members:write'),
  'GET /v1/tenants/{tenant}/members/{memberId}': route('members:write', member),
  'PUT /v1/tenants/{tenant}/members/{memberId}': route('members:write', (o) => ({
    ...member(o),
    json: { email: 'walked@walk.example', roles: [] },
  })),
  'DELETE /v1/tenants/{tenant}/members/{memberId}': route('members:write', member),
  'POST /v1/tenants/{tenant}/portal-links': route('members:write', (o) => ({
    json: { memberId: o.memberId },
  })),
};

/** `only-identities-read`, `all-but-identities-read`: role names for one permission. */
const roleName = (prefix: string, permission: Permission) => `${prefix}-${permission.replace(/:/g, '-')}`;

describe('every tenant route authorises the tenant and its permission', () => {
  const twoway = build();
  let ctx: WalkContext;
  let ownKey: string;
  let intruderKey: string;
  /** `METHOD /path` of every tenant route of the OpenAPI document, with its `x-permission`. */
  let served: Map<string, unknown>;
  /** Per permission: a key holding it alone, and one holding every other permission. */
  const withOnly = new Map<Permission, string>();
  const withoutOnly = new Map<Permission, string>();
  let noPermissionKey: string;
  const work = tempDir('twoway-walk-');
  let counter = 0;

  beforeAll(async () => {
    const pki = await makePki();
    const csr = await makeCsr(work.dir, 'walk', '/CN=walk');
    let leaves = 0;
    ctx = {
      pki,
      csrPem: readFileSync(csr.csr, 'utf8'),
      async upload() {
        const leaf = await pki.leaf({ cn: `walk-${++leaves}` });
        return {
          certificatePem: leaf.certPem,
          privateKeyPem: leaf.keyPem,
          chainPem: pki.intermediate.certPem,
        };
      },
    };
    ownKey = await createTenant(twoway, 'walk');
    intruderKey = await createTenant(twoway, 'intruder');
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { 'x-permission'?: unknown }>>;
    };
    served = new Map(
      Object.entries(doc.paths)
        .filter(([path]) => path === '/v1/tenants/{tenant}' || path.startsWith('/v1/tenants/{tenant}/'))
        .flatMap(([path, item]) =>
          Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op['x-permission']]),
        ),
    );
    const key = async (name: string, roles: string[]) => {
      const response = await twoway.call('/v1/tenants/walk/api-keys', {
        method: 'POST',
        token: ownKey,
        json: { name, roles },
      });
      expect(response.status, name).toBe(201);
      return ((await response.json()) as { apiKey: string }).apiKey;
    };
    for (const permission of PERMISSIONS) {
      for (const [prefix, permissions] of [
        ['only', [permission]],
        ['all-but', PERMISSIONS.filter((p) => p !== permission)],
      ] as const) {
        const put = await twoway.call(`/v1/tenants/walk/roles/${roleName(prefix, permission)}`, {
          method: 'PUT',
          token: ownKey,
          json: { permissions },
        });
        expect(put.status).toBe(201);
      }
      withOnly.set(permission, await key(`only ${permission}`, [roleName('only', permission)]));
      withoutOnly.set(permission, await key(`all but ${permission}`, [roleName('all-but', permission)]));
    }
    noPermissionKey = await key('nothing', []);
  });

  afterAll(() => work.cleanup());

  /** Creates one object of each kind in tenant `walk` (with its own key), plus a scheduled version 2. */
  async function makeObjects(): Promise<Objects> {
    const made = async (path: string, json?: unknown) => {
      const response = await twoway.call(`/v1/tenants/walk${path}`, {
        method: 'POST',
        token: ownKey,
        ...(json !== undefined ? { json } : {}),
      });
      expect(response.status, path).toBe(201);
      return ((await response.json()) as { id: string }).id;
    };
    const put = async (path: string, json: unknown) => {
      const response = await twoway.call(`/v1/tenants/walk${path}`, { method: 'PUT', token: ownKey, json });
      expect(response.status, path).toBe(201);
    };
    const identityId = await made('/identities', { name: 'walk', ...(await ctx.upload()) });
    await made(`/identities/${identityId}/versions`, {
      ...(await ctx.upload()),
      activateAt: new Date(Date.now() + DAY_MS).toISOString(),
    });
    const n = ++counter;
    await put(`/members/walker-${n}`, { email: `walker-${n}@walk.example`, roles: [] });
    await put(`/roles/spare-${n}`, { permissions: ['alerts:read'] });
    return {
      identityId,
      // Disabled, so that the identity it names may still be deleted.
      mappingId: await made('/mappings', {
        name: 'walk',
        service: 'api',
        url: `https://walk.example/${identityId}/`,
        identityId,
        enabled: false,
      }),
      clientCertificateId: await made('/client-certificates', {
        name: 'walk',
        certificatePem: (await ctx.upload()).certificatePem,
      }),
      apiKeyId: await made('/api-keys', { name: 'spare', roles: [] }),
      memberId: `walker-${n}`,
      role: `spare-${n}`,
    };
  }

  async function call(name: string, objects: Objects, token: string): Promise<Response> {
    const known = routes[name];
    if (!known) throw new Error(`no probe for ${name}`);
    const probe = await known.probe(objects, ctx);
    const [method, template] = name.split(' ') as [string, string];
    const values: Record<string, string> = { tenant: 'walk', ...probe.params };
    const path = template.replace(/\{(\w+)\}/g, (_all, param: string) => {
      const value = values[param];
      if (value === undefined) throw new Error(`${name}: no value for {${param}}`);
      return encodeURIComponent(value);
    });
    return twoway.call(path, { method, token, ...(probe.json !== undefined ? { json: probe.json } : {}) });
  }

  test('the walk knows every tenant route of the OpenAPI document, and each declares the permission of the table', () => {
    expect(served.size).toBeGreaterThanOrEqual(38);
    const names = [...served.keys()];
    expect(
      names.filter((name) => !(name in routes)),
      'tenant routes without a probe',
    ).toEqual([]);
    expect(Object.keys(routes).filter((name) => !served.has(name))).toEqual([]);
    for (const [name, declared] of served) expect(declared, name).toBe(routes[name]?.permission);
  });

  test("another tenant's key gets 404 not_found on every tenant route, and changes nothing", async () => {
    const objects = await makeObjects();
    const before = await snapshotDatabase(twoway);
    const audit = await (await twoway.call('/v1/tenants/walk/audit-events?limit=500')).text();
    for (const name of served.keys()) {
      const response = await call(name, objects, intruderKey);
      const body = (await response.json()) as { code?: string };
      expect({ name, status: response.status, code: body.code }).toEqual({
        name,
        status: 404,
        code: 'not_found',
      });
    }
    expect(await snapshotDatabase(twoway)).toEqual(before);
    expect(await (await twoway.call('/v1/tenants/walk/audit-events?limit=500')).text()).toBe(audit);
  });

  test('in its own tenant, every route refuses a key without its permission (403, nothing changed) and serves a key with only that permission', async () => {
    let objects = await makeObjects();
    for (const [name, { permission }] of Object.entries(routes)) {
      const read = name.startsWith('GET ');
      // Each change acts on fresh objects, so that an earlier one (a delete) does not answer for it.
      if (!read) objects = await makeObjects();
      if (permission === 'any') {
        const anyone = await call(name, objects, noPermissionKey);
        expect(anyone.status, `${name}: ${await anyone.text()}`).toBeLessThan(300);
        continue;
      }
      const before = await snapshotDatabase(twoway);
      const refused = await call(name, objects, withoutOnly.get(permission) ?? '');
      const body = (await refused.json()) as { code?: string };
      expect({ name, status: refused.status, code: body.code }).toEqual({
        name,
        status: 403,
        code: 'forbidden',
      });
      expect(await snapshotDatabase(twoway), name).toEqual(before);
      const allowed = await call(name, objects, withOnly.get(permission) ?? '');
      expect(allowed.status, `${name}: ${await allowed.text()}`).toBeLessThan(300);
    }
  });

  test("the same requests succeed with the tenant's own key, and reads with the operator token", async () => {
    let objects = await makeObjects();
    for (const name of served.keys()) {
      const read = name.startsWith('GET ');
      if (!read) objects = await makeObjects();
      const own = await call(name, objects, ownKey);
      expect(own.status, `${name}: ${await own.text()}`).toBeLessThan(300);
      if (read) expect((await call(name, objects, OPERATOR_TOKEN)).status, name).toBe(200);
    }
  });
});
