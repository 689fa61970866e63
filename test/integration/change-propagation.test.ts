/**
 * PostgreSQL LISTEN/NOTIFY: a change made through one `twoway serve` is applied by another on the
 * same database long before its revision poll (set to ten minutes here) could notice it, and the
 * listener subscribes again after its session is terminated.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { changeChannel } from '../../src/store/postgres-changes.js';
import { makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { postgresUrl } from '../helpers/databases.js';
import { curl, makeByoc, writeFile } from '../helpers/edge-clients.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { createTenant, startTestTwoway, type TestTwoway, uploadPkcs12 } from '../helpers/twoway.js';

const postgres = (await appBackends()).find((backend) => backend.name === 'postgres');

/** Far below the poll interval below (600 s): only a notification can meet it. */
const BOUND_MS = 5_000;

/** Retries `check` every 20 ms until it holds; fails after {@link BOUND_MS}. */
async function within(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + BOUND_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not applied within ${BOUND_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The listening sessions on `channel` (pg_stat_activity shows their last statement, the LISTEN). */
async function listeners(channel: string, terminate = false): Promise<number> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const select = terminate ? 'pg_terminate_backend(pid)' : 'pid';
    const { rows } = await client.query(
      `select ${select} from pg_stat_activity where application_name = 'twoway-listen' and query like $1`,
      [`LISTEN "${channel}"%`],
    );
    return rows.length;
  } finally {
    await client.end();
  }
}

describe.skipIf(postgres === undefined)('changes reach another process by NOTIFY', () => {
  const files = tempDir('twoway-notify-');
  let a: TestTwoway;
  let b: TestTwoway;
  let apiKey: string;
  let channel: string;
  let pki: TestPki;
  let upstream: MtlsServer;
  let caFile: string;

  beforeAll(async () => {
    const database = (await postgres?.env()) ?? {};
    const env = {
      ...database,
      TWOWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      TWOWAY_CHANGE_POLL_INTERVAL_MS: '600000',
    };
    a = await startTestTwoway(env);
    b = await startTestTwoway(env);
    const schema = new URL(database.TWOWAY_DATABASE_URL ?? '').searchParams.get('options')?.split('=')[1];
    channel = changeChannel(schema ?? '');
    apiKey = await createTenant(a, 'acme');
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    caFile = writeFile(files.dir, 'ca.pem', await (await fetch(`${a.url}/v1/ca/certificates`)).text());
    await within(async () => (await listeners(channel)) === 2);
  });

  afterAll(async () => {
    await upstream?.close();
    await b?.close();
    await a?.close();
    files.cleanup();
  });

  const forwardAtB = () =>
    fetch(`${b.url}/v1/runtime/forward`, {
      headers: {
        authorization: `Bearer ${apiKey}`,
        'twoway-forward-url': `${upstream.url}/x`,
        'twoway-service': 'api',
      },
    });

  test('a mapping created through A forwards at B', async () => {
    const leaf = await pki.leaf({ cn: 'acme-client', key: 'ec256' });
    const uploaded = await uploadPkcs12(a, 'acme', makePkcs12(leaf, [pki.intermediate], 'pw'), 'pw', apiKey);
    expect(uploaded.status).toBe(201);
    const { id } = (await uploaded.json()) as { id: string };
    // B has looked the tenant up (and cached that it has no mapping).
    expect((await forwardAtB()).headers.get('twoway-error')).toBe('no_mapping');
    const target = { service: 'api', url: `${upstream.url}/`, trustAnchorsPem: pki.root.certPem };
    const json = { name: 'notified', identityId: id, ...target };
    const mapping = await a.call('/v1/tenants/acme/mappings', { method: 'POST', token: apiKey, json });
    expect(mapping.status, await mapping.clone().text()).toBe(201);
    await within(async () => (await forwardAtB()).status === 200);
  });

  test("a client certificate revoked through A is refused at B's edge", async () => {
    const made = await makeByoc(files.dir, 'laptop', 'acme-laptop');
    const registered = await a.call('/v1/tenants/acme/client-certificates', {
      method: 'POST',
      token: apiKey,
      json: { certificatePem: readFileSync(made.cert, 'utf8') },
    });
    expect(registered.status).toBe(201);
    const { id } = (await registered.json()) as { id: string };
    const hello = () =>
      curl(`${b.edgeUrl}/v1/tenants/acme/mtls/hello`, {
        ca: caFile,
        cert: made.cert,
        key: made.key,
        apiKey,
      });
    const first = await hello();
    expect(first.status, first.stderr + first.body).toBe(200);
    const revoked = await a.call(`/v1/tenants/acme/client-certificates/${id}/revoke`, {
      method: 'POST',
      token: apiKey,
    });
    expect(revoked.status).toBe(200);
    await within(async () => (await hello()).status !== 200);
  });

  test('B subscribes again after its listening session is terminated, and catches up', async () => {
    const created = await a.call('/v1/tenants/acme/api-keys', { method: 'POST', token: apiKey });
    const key = (await created.json()) as { id: string; apiKey: string };
    const meAtB = () => b.call('/v1/tenants/acme', { token: key.apiKey });
    expect((await meAtB()).status).toBe(200);

    expect(await listeners(channel, true)).toBe(2);
    // Revoked while nobody listens: B learns it when it reads the revision after subscribing again.
    expect((await a.call(`/v1/tenants/acme/api-keys/${key.id}`, { method: 'DELETE' })).status).toBe(204);
    await within(async () => (await meAtB()).status === 401);
    await within(async () => (await listeners(channel)) === 2);

    // And announcements reach it again.
    const second = await a.call('/v1/tenants/acme/api-keys', { method: 'POST', token: apiKey });
    const key2 = (await second.json()) as { id: string; apiKey: string };
    expect((await b.call('/v1/tenants/acme', { token: key2.apiKey })).status).toBe(200);
    expect((await a.call(`/v1/tenants/acme/api-keys/${key2.id}`, { method: 'DELETE' })).status).toBe(204);
    await within(async () => (await b.call('/v1/tenants/acme', { token: key2.apiKey })).status === 401);
  });
});
