import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePkcs12, makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, buildInTest, createTenant, uploadPkcs12 } from '../helpers/twoway.js';

const backends = await appBackends();

describe.each(backends)('forward end to end on $name', (backend) => {
  let pki: TestPki;
  let upstream: MtlsServer;
  let apiKey: string;
  const twoway = build({ backend });

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    apiKey = await createTenant(twoway, 'acme', 'Acme');
  });

  afterAll(() => upstream?.close());

  async function mapIdentity(leaf: CertKey, legacy: boolean, path: string): Promise<string> {
    const uploaded = await uploadPkcs12(
      twoway,
      'acme',
      makePkcs12(leaf, [pki.intermediate], 's3cret!', { legacy }),
      's3cret!',
      apiKey,
    );
    expect(uploaded.status).toBe(201);
    const identity = (await uploaded.json()) as { id: string; versions: { fingerprintSha256: string }[] };
    expect(identity.versions[0]?.fingerprintSha256).toBe(leaf.fingerprintSha256);
    const mapping = await twoway.call('/v1/tenants/acme/mappings', {
      method: 'POST',
      token: apiKey,
      json: {
        name: path,
        service: 'api',
        url: `${upstream.url}${path}`,
        match: 'prefix',
        identityId: identity.id,
        trustAnchorsPem: pki.root.certPem,
      },
    });
    expect(mapping.status).toBe(201);
    return identity.id;
  }

  function forward(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${apiKey}`);
    headers.set('twoway-forward-url', `${upstream.url}${path}`);
    headers.set('twoway-service', 'api');
    return fetch(`${twoway.url}/v1/runtime/forward`, {
      ...init,
      headers,
      ...(init.body ? { duplex: 'half' } : {}),
    } as RequestInit);
  }

  for (const legacy of [true, false]) {
    const kind = legacy ? 'legacy (RC2-40/3DES)' : 'modern (PBES2/AES-256)';
    test(`a ${kind} PKCS#12 is presented on GET and on a streamed 5 MiB POST`, async () => {
      const leaf = await pki.leaf({
        cn: `acme-${legacy ? 'legacy' : 'modern'}`,
        key: legacy ? 'rsa2048' : 'ec256',
      });
      const path = legacy ? '/legacy' : '/modern';
      await mapIdentity(leaf, legacy, path);

      const got = await forward(`${path}/items?q=1`, {
        headers: { 'x-custom': 'kept', connection: 'keep-alive' },
      });
      expect(got.status).toBe(200);
      expect(got.headers.get('x-upstream')).toBe('node');
      expect(got.headers.get('twoway-error')).toBeNull();
      const echo = (await got.json()) as Echo;
      expect(echo.clientFingerprint).toBe(leaf.fingerprintSha256);
      expect(echo.clientSubject).toBe(`CN=acme-${legacy ? 'legacy' : 'modern'}`);
      expect(echo.method).toBe('GET');
      expect(echo.path).toBe(`${path}/items?q=1`);
      expect(echo.headers['x-custom']).toBe('kept');
      expect(echo.headers.authorization).toBeUndefined();
      expect(echo.headers['twoway-forward-url']).toBeUndefined();

      const body = randomBytes(5 * 1024 * 1024);
      const posted = await forward(`${path}/upload`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(posted.status).toBe(200);
      const postEcho = (await posted.json()) as Echo;
      expect(postEcho.method).toBe('POST');
      expect(postEcho.bodyBytes).toBe(body.length);
      expect(postEcho.bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
      expect(postEcho.clientFingerprint).toBe(leaf.fingerprintSha256);
    });
  }

  test('resolve reports the mapping, identity and status; unmapped URLs are not configured', async () => {
    const resolved = await twoway.call('/v1/runtime/resolve', {
      method: 'POST',
      token: apiKey,
      json: {
        items: [
          { tenant: 'acme', service: 'api', url: `${upstream.url}/legacy/x` },
          { tenant: 'acme', service: 'api', url: `${upstream.url}/elsewhere` },
          { tenant: 'acme', service: 'webhooks', url: `${upstream.url}/legacy/x` },
        ],
      },
    });
    expect(resolved.status).toBe(200);
    const { items } = (await resolved.json()) as {
      items: { configured: boolean; identityStatus?: string }[];
    };
    expect(items.map((i) => i.configured)).toEqual([true, false, false]);
    expect(items[0]?.identityStatus).toBe('active');
  });

  test('metrics count forwards by outcome', async () => {
    const metrics = await (await twoway.call('/metrics')).text();
    expect(metrics).toMatch(/twoway_forward_requests_total\{outcome="ok"\} [1-9]/);
    expect(metrics).toContain('twoway_forward_duration_seconds_bucket');
  });
});

// Pools and TLS contexts are runtime memory, not store state: one backend is enough.
describe('idle forward pools', () => {
  test('an idle pool closes after TWOWAY_FORWARD_IDLE_AGENT_TTL_MS and takes its TLS context along', async () => {
    const pki = await makePki();
    const upstream = await startMtlsServer(pki);
    // 2 s: long enough that a slow first forward (key unwrap, context, handshake) cannot see two
    // sweeps before the gauges are read.
    const twoway = await buildInTest({ env: { TWOWAY_FORWARD_IDLE_AGENT_TTL_MS: '2000' } });
    try {
      const apiKey = await createTenant(twoway, 'idle');
      const leaf = await pki.leaf({ cn: 'idle', key: 'ec256' });
      const uploaded = await uploadPkcs12(
        twoway,
        'idle',
        makePkcs12(leaf, [pki.intermediate], 'pw', { legacy: false }),
        'pw',
        apiKey,
      );
      const { id } = (await uploaded.json()) as { id: string };
      const mapped = await twoway.call('/v1/tenants/idle/mappings', {
        method: 'POST',
        token: apiKey,
        json: {
          name: 'u',
          service: 'api',
          url: `${upstream.url}/`,
          match: 'prefix',
          identityId: id,
          trustAnchorsPem: pki.root.certPem,
        },
      });
      expect(mapped.status).toBe(201);
      const forward = () =>
        fetch(`${twoway.url}/v1/runtime/forward`, {
          headers: {
            authorization: `Bearer ${apiKey}`,
            'twoway-service': 'api',
            'twoway-forward-url': `${upstream.url}/x`,
          },
        });
      const gauges = async () => {
        const text = await (await twoway.call('/metrics')).text();
        const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1]);
        return {
          pools: value(/^twoway_forward_pools\{state="live"\} (\d+)$/m),
          contexts: value(/^twoway_forward_tls_contexts (\d+)$/m),
        };
      };
      const first = await forward();
      expect(first.status).toBe(200);
      await first.arrayBuffer();
      expect(await gauges()).toEqual({ pools: 1, contexts: 1 });
      // The sweep runs every TTL; an unused pool goes at the second sweep at the latest.
      const deadline = Date.now() + 10_000;
      let now = await gauges();
      while ((now.pools !== 0 || now.contexts !== 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        now = await gauges();
      }
      expect(now).toEqual({ pools: 0, contexts: 0 });
      const again = await forward();
      expect(again.status).toBe(200);
      await again.arrayBuffer();
      expect(await gauges()).toEqual({ pools: 1, contexts: 1 });
    } finally {
      await upstream.close();
    }
  });
});
