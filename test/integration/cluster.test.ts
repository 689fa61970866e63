import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { freePort } from '../helpers/nginx.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TOKEN = 'cluster-operator-token-0123456789';

describe('twoway serve with two workers (TWOWAY_WORKERS=2)', () => {
  let pki: TestPki;
  let upstream: MtlsServer;
  let serve: ChildProcess;
  let api: string;
  const data = tempDir('twoway-cluster-');

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    serve = spawn('node', [join(ROOT, 'dist/cli/index.js'), 'serve'], {
      env: {
        ...process.env,
        TWOWAY_WORKERS: '2',
        TWOWAY_HTTP_PORT: String(port),
        TWOWAY_EDGE_PORT: String(await freePort()),
        TWOWAY_DATA_DIR: join(data.dir, 'data'),
        TWOWAY_OPERATOR_TOKEN: TOKEN,
        TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
        // A long poll interval: only the worker relay can make other workers see a change in time.
        TWOWAY_CHANGE_POLL_INTERVAL_MS: '60000',
        TWOWAY_LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
      detached: true,
    });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const up = await fetch(`${api}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline) throw new Error('cluster did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (serve?.pid) process.kill(-serve.pid, 'SIGTERM');
    await upstream?.close();
    data.cleanup();
  });

  /** A request on a new connection each time, so the cluster spreads them over the workers. */
  function call(path: string, init: RequestInit = {}, token = TOKEN): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${token}`);
    headers.set('connection', 'close');
    return fetch(`${api}${path}`, { ...init, headers });
  }

  test('a rotation answered by one worker is in force in every worker for the next request', async () => {
    const created = await call('/v1/tenants', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'multi', name: 'Multi' }),
    });
    expect(created.status).toBe(201);
    const { apiKey } = (await created.json()) as { apiKey: string };
    const v1 = await pki.leaf({ cn: 'cluster-v1' });
    const v2 = await pki.leaf({ cn: 'cluster-v2' });
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(makePkcs12(v1, [pki.intermediate], 'pw'))]), 'v1.p12');
    form.set('password', 'pw');
    const identity = (await (
      await call('/v1/tenants/multi/identities', { method: 'POST', body: form }, apiKey)
    ).json()) as {
      id: string;
    };
    const mapped = await call(
      '/v1/tenants/multi/mappings',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'm',
          service: 'api',
          url: `${upstream.url}/`,
          identityId: identity.id,
          trustAnchorsPem: pki.root.certPem,
        }),
      },
      apiKey,
    );
    expect(mapped.status).toBe(201);

    const presented = async () => {
      const response = await call(
        '/v1/runtime/forward',
        {
          headers: { 'twoway-service': 'api', 'twoway-forward-url': `${upstream.url}/x` },
        },
        apiKey,
      );
      expect(response.status).toBe(200);
      return ((await response.json()) as Echo).clientFingerprint;
    };
    // Warm both workers' caches with version 1.
    for (let i = 0; i < 6; i++) expect(await presented()).toBe(v1.fingerprintSha256);

    const rotate = new FormData();
    rotate.set('certificate', v2.certPem);
    rotate.set('privateKey', v2.keyPem);
    rotate.set('chain', pki.intermediate.certPem);
    const rotated = await call(
      `/v1/tenants/multi/identities/${identity.id}/versions`,
      { method: 'POST', body: rotate },
      apiKey,
    );
    expect(rotated.status).toBe(201);
    for (let i = 0; i < 10; i++) expect(await presented()).toBe(v2.fingerprintSha256);

    const back = await call(
      `/v1/tenants/multi/identities/${identity.id}/versions/1/activate`,
      { method: 'POST' },
      apiKey,
    );
    expect(back.status).toBe(200);
    for (let i = 0; i < 10; i++) expect(await presented()).toBe(v1.fingerprintSha256);
  });

  test('an API key revoked through one worker is refused by every worker at once', async () => {
    const created = await call('/v1/tenants/multi/api-keys', { method: 'POST' });
    const { id, apiKey } = (await created.json()) as { id: string; apiKey: string };
    // Both workers have it cached.
    for (let i = 0; i < 6; i++) expect((await call('/v1/tenants/multi', {}, apiKey)).status).toBe(200);
    expect((await call(`/v1/tenants/multi/api-keys/${id}`, { method: 'DELETE' })).status).toBe(204);
    for (let i = 0; i < 10; i++) expect((await call('/v1/tenants/multi', {}, apiKey)).status).toBe(401);
  });
});
