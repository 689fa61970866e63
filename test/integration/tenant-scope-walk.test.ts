import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { makeCsr } from '../helpers/edge-clients.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { OPERATOR_TOKEN, startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

const DAY_MS = 86_400_000;

/** One object of each kind in the tenant under attack, for the `{id}` and `{version}` of a path. */
interface Objects {
  identityId: string;
  mappingId: string;
  clientCertificateId: string;
  apiKeyId: string;
  connectionId: string;
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

const identity = (o: Objects): Probe => ({ params: { id: o.identityId } });
const mapping = (o: Objects): Probe => ({ params: { id: o.mappingId } });
const clientCertificate = (o: Objects): Probe => ({ params: { id: o.clientCertificateId } });
const version2 = (o: Objects): Probe => ({ params: { id: o.identityId, version: '2' } });
const connection = (o: Objects): Probe => ({ params: { id: o.connectionId } });

/**
 * Every tenant route (`/v1/tenants/{tenant}` and below) with a request the route's schema accepts.
 * A route of the OpenAPI document that this table does not know fails the walk: a new tenant route
 * needs a line here, and is then checked like the others.
 */
const probes: Record<string, (o: Objects, ctx: WalkContext) => Promise<Probe> | Probe> = {
  'GET /v1/tenants/{tenant}': () => ({}),
  'PATCH /v1/tenants/{tenant}': (o) => ({ json: { defaultIdentityId: o.identityId } }),
  'POST /v1/tenants/{tenant}/api-keys': () => ({}),
  'DELETE /v1/tenants/{tenant}/api-keys/{id}': (o) => ({ params: { id: o.apiKeyId } }),
  'POST /v1/tenants/{tenant}/identities': async (_o, ctx) => ({
    json: { name: 'new', ...(await ctx.upload()) },
  }),
  'GET /v1/tenants/{tenant}/identities': () => ({}),
  'GET /v1/tenants/{tenant}/identities/{id}': identity,
  'PATCH /v1/tenants/{tenant}/identities/{id}': (o) => ({ ...identity(o), json: { disabled: true } }),
  'DELETE /v1/tenants/{tenant}/identities/{id}': identity,
  'POST /v1/tenants/{tenant}/identities/{id}/versions': async (o, ctx) => ({
    ...identity(o),
    json: await ctx.upload(),
  }),
  'POST /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate': version2,
  'DELETE /v1/tenants/{tenant}/identities/{id}/versions/{version}/activate-at': version2,
  'POST /v1/tenants/{tenant}/mappings': (o) => ({
    json: { name: 'new', service: 'api', url: 'https://new.walk.example/', identityId: o.identityId },
  }),
  'GET /v1/tenants/{tenant}/mappings': () => ({}),
  'GET /v1/tenants/{tenant}/mappings/{id}': mapping,
  'PATCH /v1/tenants/{tenant}/mappings/{id}': (o) => ({ ...mapping(o), json: { name: 'renamed' } }),
  'DELETE /v1/tenants/{tenant}/mappings/{id}': mapping,
  'GET /v1/tenants/{tenant}/alerts': () => ({}),
  'GET /v1/tenants/{tenant}/notification-settings': () => ({}),
  'PUT /v1/tenants/{tenant}/notification-settings': () => ({
    json: { emails: ['ops@walk.example'], webhookUrls: [] },
  }),
  'GET /v1/tenants/{tenant}/notifications': () => ({}),
  'GET /v1/tenants/{tenant}/audit-events': () => ({}),
  // Port 1 on loopback: nothing listens, so the tester answers at once (verdict unreachable).
  'POST /v1/tenants/{tenant}/identity-tests': (o) => ({
    json: { url: 'https://127.0.0.1:1/', identityId: o.identityId, timeoutMs: 1000 },
  }),
  'POST /v1/tenants/{tenant}/client-certificates': async (_o, ctx) => ({
    json: { name: 'new', certificatePem: (await ctx.upload()).certificatePem },
  }),
  'GET /v1/tenants/{tenant}/client-certificates': () => ({}),
  'POST /v1/tenants/{tenant}/certificate-signing-requests': (_o, ctx) => ({ json: { csrPem: ctx.csrPem } }),
  'GET /v1/tenants/{tenant}/client-certificates/{id}': clientCertificate,
  'DELETE /v1/tenants/{tenant}/client-certificates/{id}': clientCertificate,
  'POST /v1/tenants/{tenant}/client-certificates/{id}/revoke': (o) => ({
    ...clientCertificate(o),
    json: { reason: 'superseded' },
  }),
  'POST /v1/tenants/{tenant}/connections': (o) => ({
    json: {
      name: `new-${o.connectionId}`,
      baseUrl: 'https://new.walk.example/api',
      auth: { type: 'header', headerName: 'X-Api-Key', headerValue: 'walk-header-value' },
      clientCertificate: { enabled: true, identityId: o.identityId },
    },
  }),
  'GET /v1/tenants/{tenant}/connections': () => ({}),
  'GET /v1/tenants/{tenant}/connections/{id}': connection,
  'PATCH /v1/tenants/{tenant}/connections/{id}': (o) => ({
    ...connection(o),
    json: { name: `renamed-${o.connectionId}`, auth: { type: 'basic', username: 'u', password: 'walk-pw' } },
  }),
  'DELETE /v1/tenants/{tenant}/connections/{id}': connection,
};

describe('every tenant route authorises the tenant', () => {
  let twoway: TestTwoway & { dataDir: string };
  let ctx: WalkContext;
  let ownKey: string;
  let intruderKey: string;
  let routes: string[];
  const work = tempDir('twoway-walk-');

  beforeAll(async () => {
    const pki = await makePki();
    twoway = await startTestTwoway();
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
    ownKey = await createTenant('walk');
    intruderKey = await createTenant('intruder');
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    routes = Object.entries(doc.paths)
      .filter(([path]) => path === '/v1/tenants/{tenant}' || path.startsWith('/v1/tenants/{tenant}/'))
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
  });

  afterAll(async () => {
    await twoway?.close();
    work.cleanup();
  });

  async function createTenant(id: string): Promise<string> {
    const response = await twoway.call('/v1/tenants', { method: 'POST', json: { id, name: id } });
    expect(response.status).toBe(201);
    return ((await response.json()) as { apiKey: string }).apiKey;
  }

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
    const identityId = await made('/identities', { name: 'walk', ...(await ctx.upload()) });
    await made(`/identities/${identityId}/versions`, {
      ...(await ctx.upload()),
      activateAt: new Date(Date.now() + DAY_MS).toISOString(),
    });
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
      apiKeyId: await made('/api-keys'),
      // Switch off, so that the identity it could name may still be deleted.
      connectionId: await made('/connections', {
        name: `walk-${identityId}`,
        baseUrl: 'https://walk.example/api',
        auth: { type: 'basic', username: 'walk', password: 'walk-password' },
      }),
    };
  }

  async function call(route: string, objects: Objects, token: string): Promise<Response> {
    const make = probes[route];
    if (!make) throw new Error(`no probe for ${route}`);
    const probe = await make(objects, ctx);
    const [method, template] = route.split(' ') as [string, string];
    const values: Record<string, string> = { tenant: 'walk', ...probe.params };
    const path = template.replace(/\{(\w+)\}/g, (_all, name: string) => {
      const value = values[name];
      if (value === undefined) throw new Error(`${route}: no value for {${name}}`);
      return encodeURIComponent(value);
    });
    return twoway.call(path, { method, token, ...(probe.json !== undefined ? { json: probe.json } : {}) });
  }

  test('the walk knows every tenant route of the OpenAPI document, and nothing else', () => {
    expect(routes.length).toBeGreaterThanOrEqual(28);
    expect(
      routes.filter((route) => !(route in probes)),
      'tenant routes without a probe',
    ).toEqual([]);
    expect(Object.keys(probes).filter((route) => !routes.includes(route))).toEqual([]);
  });

  test("another tenant's key gets 404 not_found on every tenant route, and changes nothing", async () => {
    const objects = await makeObjects();
    const before = await snapshotDatabase(twoway);
    const audit = await (await twoway.call('/v1/tenants/walk/audit-events?limit=500')).text();
    for (const route of routes) {
      const response = await call(route, objects, intruderKey);
      const body = (await response.json()) as { code?: string };
      expect({ route, status: response.status, code: body.code }).toEqual({
        route,
        status: 404,
        code: 'not_found',
      });
    }
    expect(await snapshotDatabase(twoway)).toEqual(before);
    expect(await (await twoway.call('/v1/tenants/walk/audit-events?limit=500')).text()).toBe(audit);
  });

  test("the same requests succeed with the tenant's own key, and reads with the operator token", async () => {
    let objects = await makeObjects();
    for (const route of routes) {
      const read = route.startsWith('GET ');
      // Each change acts on fresh objects, so that an earlier one (a delete) does not answer for it.
      if (!read) objects = await makeObjects();
      const own = await call(route, objects, ownKey);
      expect(own.status, `${route}: ${await own.text()}`).toBeLessThan(300);
      if (read) expect((await call(route, objects, OPERATOR_TOKEN)).status, route).toBe(200);
    }
  });
});
