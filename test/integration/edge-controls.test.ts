/**
 * The inbound flows as vendors document them (issue 16, items 5, 7, 8): the hello check with the
 * certificate alone at a configured path, the operator's per-tenant edge switch, and API keys used
 * as a client id + secret pair (`Basic`), on SQLite and PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import {
  curl,
  type EdgeTenant,
  RawEdgeConnection,
  rawHeaderValues,
  run,
  startPlatformUpstream,
  tenantWithByoc,
  writeFile,
} from '../helpers/edge-clients.js';
import { build, buildInTest } from '../helpers/twoway.js';

const backends = await appBackends();

/** curl with the tenant's certificate and key, trusting the edge's CA (`ca`). */
function edgeCurl(
  ca: string,
  org: EdgeTenant,
  url: string,
  options: Omit<Parameters<typeof curl>[1], 'ca'> = {},
) {
  return curl(url, { ca, cert: org.cert, key: org.key, ...options });
}

/** `--cacert <ca> --cert <crt> --key <key>`, as vendors write them. */
function certificateArgs(ca: string, org: EdgeTenant): string[] {
  return ['--cacert', ca, '--cert', org.cert, '--key', org.key];
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

describe.each(backends)('edge hello, edge switch and Basic credentials on $name', (backend) => {
  const files = tempDir('twoway-edge-controls-');
  let upstream: Awaited<ReturnType<typeof startPlatformUpstream>>;
  let caFile: string;
  let orgA: EdgeTenant;
  let orgB: EdgeTenant;
  const twoway = build({
    backend,
    env: async () => {
      upstream = await startPlatformUpstream();
      return { TWOWAY_EDGE_UPSTREAM: upstream.url, TWOWAY_EDGE_HELLO_PATH: '/v4/orgs/{tenant}/mtls/hello' };
    },
  });

  beforeAll(async () => {
    caFile = writeFile(files.dir, 'ca.pem', await (await fetch(`${twoway.url}/v1/ca/certificates`)).text());
    orgA = await tenantWithByoc(twoway, files.dir, 'org-a');
    orgB = await tenantWithByoc(twoway, files.dir, 'org-b');
  });
  afterAll(async () => {
    await upstream.close();
    files.cleanup();
  });

  test('the hello curl exactly as the vendor documents it: certificate and key, no API key, 200 Hello, world!', async () => {
    const url = new URL(twoway.edgeUrl);
    // curl --cert client.crt --key client.key https://mtls.../v4/orgs/<ORG_ID>/mtls/hello
    const result = await run('curl', [
      ...certificateArgs(caFile, orgA),
      `https://localhost:${url.port}/v4/orgs/org-a/mtls/hello`,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Hello, world!');
    expect(upstream.requests).toHaveLength(0);
  });

  test("hello refuses another tenant's path, no certificate, and a key of another tenant", async () => {
    const hello = (org: string) => `${twoway.edgeUrl}/v4/orgs/${org}/mtls/hello`;
    const other = await edgeCurl(caFile, orgA, hello('org-b'));
    expect(other.status).toBe(403);
    expect(JSON.parse(other.body).code).toBe('client_certificate_tenant_mismatch');
    const unknownOrg = await edgeCurl(caFile, orgA, hello('nobody'));
    expect(JSON.parse(unknownOrg.body).code).toBe('client_certificate_tenant_mismatch');
    const noCert = await curl(hello('org-a'), { ca: caFile });
    expect(noCert.status).toBe(401);
    expect(JSON.parse(noCert.body).code).toBe('client_certificate_required');
    // With an API key, the key must be this tenant's (as before): B's key with A's certificate.
    const wrongKey = await edgeCurl(caFile, orgA, hello('org-a'), { apiKey: orgB.apiKey });
    expect(wrongKey.status).toBe(403);
    const badKey = await edgeCurl(caFile, orgA, hello('org-a'), { apiKey: 'tw_nope' });
    expect(badKey.status).toBe(401);
    const post = await edgeCurl(caFile, orgA, hello('org-a'), { method: 'POST' });
    expect(post.status).toBe(405);
  });

  test('every other path still needs the API key; the default hello path is not the hello check here', async () => {
    const proxied = await edgeCurl(caFile, orgA, `${twoway.edgeUrl}/v4/orgs/org-a/things`);
    expect(proxied.status).toBe(401);
    expect(JSON.parse(proxied.body).code).toBe('unauthorized');
    const oldHello = await edgeCurl(caFile, orgA, `${twoway.edgeUrl}/v1/tenants/org-a/mtls/hello`);
    expect(oldHello.status).toBe(401);
    expect(upstream.requests).toHaveLength(0);
  });

  test('Basic base64(key id:secret) works on the API and at the edge; a wrong pairing is 401', async () => {
    const own = await twoway.call('/v1/tenants/org-a', {
      token: null,
      headers: { authorization: basic(orgA.apiKeyId, orgA.apiKey) },
    });
    expect(own.status).toBe(200);
    const other = await twoway.call('/v1/tenants/org-b', {
      token: null,
      headers: { authorization: basic(orgA.apiKeyId, orgA.apiKey) },
    });
    expect(other.status).toBe(404);
    for (const authorization of [
      basic(orgB.apiKeyId, orgA.apiKey),
      basic('key_unknown', orgA.apiKey),
      basic('operator', 'test-operator-token-0123456789'),
      `Basic ${Buffer.from(orgA.apiKey).toString('base64')}`,
      `Basic ${Buffer.from(`${orgA.apiKeyId}:`).toString('base64')}`,
      'Basic !!!',
    ]) {
      const refused = await twoway.call('/v1/tenants/org-a', { token: null, headers: { authorization } });
      expect(refused.status, authorization).toBe(401);
      expect(((await refused.json()) as { code: string }).code).toBe('unauthorized');
    }
    // A new key's id comes with it.
    const made = await twoway.call('/v1/tenants/org-a/api-keys', { method: 'POST', token: orgA.apiKey });
    const key = (await made.json()) as { id: string; apiKey: string };
    const viaNewKey = await twoway.call('/v1/tenants/org-a', {
      token: null,
      headers: { authorization: basic(key.id, key.apiKey) },
    });
    expect(viaNewKey.status).toBe(200);

    // curl --user id:secret sends exactly Basic base64(id:secret).
    const url = new URL(twoway.edgeUrl);
    const before = upstream.requests.length;
    const edge = await run('curl', [
      '-sS',
      ...certificateArgs(caFile, orgA),
      '--user',
      `${orgA.apiKeyId}:${orgA.apiKey}`,
      `https://localhost:${url.port}/api/orders`,
    ]);
    expect(edge.code).toBe(0);
    expect(JSON.parse(edge.stdout)).toEqual({ ok: true, path: '/api/orders' });
    expect(upstream.requests).toHaveLength(before + 1);
    expect(rawHeaderValues(upstream.requests.at(-1)?.rawHeaders ?? [], 'twoway-tenant')).toEqual(['org-a']);
    const mismatched = await edgeCurl(caFile, orgA, `${twoway.edgeUrl}/api/orders`, {
      headers: [`Authorization: ${basic(orgB.apiKeyId, orgA.apiKey)}`],
    });
    expect(mismatched.status).toBe(401);
    expect(upstream.requests).toHaveLength(before + 1);
  });

  test('the operator switches a tenant off: 403 edge_not_enabled, also on an open connection, and on again', async () => {
    const tenant = (await (await twoway.call('/v1/tenants/org-b')).json()) as { edgeEnabled: boolean };
    expect(tenant.edgeEnabled).toBe(true);
    const connection = await RawEdgeConnection.connect(twoway.edgeUrl, {
      ca: readFileSync(caFile, 'utf8'),
      cert: readFileSync(orgB.cert, 'utf8'),
      key: readFileSync(orgB.key, 'utf8'),
    });
    try {
      expect((await connection.get('/v4/orgs/org-b/mtls/hello', orgB.apiKey)).status).toBe(200);
      // The tenant cannot switch itself; another tenant cannot see it.
      const own = await twoway.call('/v1/tenants/org-b', {
        method: 'PATCH',
        token: orgB.apiKey,
        json: { edgeEnabled: true },
      });
      expect(own.status).toBe(403);
      expect(((await own.json()) as { code: string }).code).toBe('operator_only');
      const foreign = await twoway.call('/v1/tenants/org-b', {
        method: 'PATCH',
        token: orgA.apiKey,
        json: { edgeEnabled: false },
      });
      expect(foreign.status).toBe(404);

      const off = await twoway.call('/v1/tenants/org-b', { method: 'PATCH', json: { edgeEnabled: false } });
      expect(off.status).toBe(200);
      expect(((await off.json()) as { edgeEnabled: boolean }).edgeEnabled).toBe(false);
      const refused = await connection.get('/v4/orgs/org-b/mtls/hello', orgB.apiKey);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body).code).toBe('edge_not_enabled');
      expect(refused.headers['twoway-error']).toBe('edge_not_enabled');
      const hello = await edgeCurl(caFile, orgB, `${twoway.edgeUrl}/v4/orgs/org-b/mtls/hello`);
      expect(JSON.parse(hello.body).code).toBe('edge_not_enabled');
      // Org A is untouched.
      const helloA = await edgeCurl(caFile, orgA, `${twoway.edgeUrl}/v4/orgs/org-a/mtls/hello`);
      expect(helloA.status).toBe(200);

      const on = await twoway.call('/v1/tenants/org-b', { method: 'PATCH', json: { edgeEnabled: true } });
      expect(on.status).toBe(200);
      expect((await connection.get('/v4/orgs/org-b/mtls/hello', orgB.apiKey)).status).toBe(200);
    } finally {
      connection.close();
    }
    const audit = (await (await twoway.call('/v1/tenants/org-b/audit-events')).json()) as {
      items: { action: string; detail: unknown }[];
    };
    expect(audit.items.filter((e) => e.action === 'tenant.update').map((e) => e.detail)).toEqual(
      expect.arrayContaining([{ edgeEnabled: false }, { edgeEnabled: true }]),
    );
  });

  test('PATCH /v1/tenants/{tenant}: bad input changes nothing', async () => {
    for (const json of [{ edgeEnabled: 'yes' }, { edgeEnabled: 2 }, { other: true }, []]) {
      const answer = await twoway.call('/v1/tenants/org-a', { method: 'PATCH', json });
      expect(answer.status, JSON.stringify(json)).toBe(400);
    }
    const missing = await twoway.call('/v1/tenants/nobody', {
      method: 'PATCH',
      json: { edgeEnabled: false },
    });
    expect(missing.status).toBe(404);
    const tenant = (await (await twoway.call('/v1/tenants/org-a')).json()) as { edgeEnabled: boolean };
    expect(tenant.edgeEnabled).toBe(true);
  });
});

describe.each(backends)('TWOWAY_EDGE_DEFAULT_ENABLED=false on $name', (backend) => {
  test('a tenant the operator has not switched on is refused with edge_not_enabled', async () => {
    const files = tempDir('twoway-edge-default-');
    try {
      const twoway = await buildInTest({ backend, env: { TWOWAY_EDGE_DEFAULT_ENABLED: 'false' } });
      const caFile = writeFile(
        files.dir,
        'ca.pem',
        await (await fetch(`${twoway.url}/v1/ca/certificates`)).text(),
      );
      const org = await tenantWithByoc(twoway, files.dir, 'org-c');
      const hello = `${twoway.edgeUrl}/v1/tenants/org-c/mtls/hello`;
      const refused = await edgeCurl(caFile, org, hello);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body).code).toBe('edge_not_enabled');
      expect(
        (await twoway.call('/v1/tenants', { method: 'GET' }).then((r) => r.json())) as unknown,
      ).toMatchObject({
        items: [{ id: 'org-c', edgeEnabled: false }],
      });
      await twoway.call('/v1/tenants/org-c', { method: 'PATCH', json: { edgeEnabled: true } });
      const admitted = await edgeCurl(caFile, org, hello);
      expect(admitted.status).toBe(200);
      expect(admitted.body).toBe('Hello, world!');
    } finally {
      files.cleanup();
    }
  });
});
