// Change propagation between `twoway serve` processes on one PostgreSQL database (LISTEN/NOTIFY).
//
//   npm run build && node bench/propagation.mjs [--changes 100] [--revocations 20] [--url postgres://...]
//
// Starts three serves on a fresh schema with the revision poll at 60 s (so only notifications can
// deliver a change in time), then:
// - `changes` API-key revocations, made through the processes in turn; each of the two others is
//   asked with that key in a tight loop (it cached the key before) until it answers 401. Propagation
//   is the time from the revoking process's answer to that 401.
// - `revocations` client certificate revocations through process A; process B's edge is called with
//   the certificate over a fresh TLS connection each time until it refuses it.
// Prints p50/p99/max in ms as JSON. Every process is stopped by PID; the schema is dropped.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { start, stop, waitForPort } from './lib.mjs';

const { values } = parseArgs({
  options: {
    changes: { type: 'string', default: '100' },
    revocations: { type: 'string', default: '20' },
    url: {
      type: 'string',
      default: process.env.TWOWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
});
const root = new URL('..', import.meta.url).pathname;
const OPERATOR = `bench-operator-${randomBytes(8).toString('hex')}`;
const schema = `tw_bench_${randomBytes(5).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'twoway-propagation-'));

const admin = new pg.Client({ connectionString: values.url });
await admin.connect();
await admin.query(`create schema ${schema}`);
const databaseUrl = new URL(values.url);
databaseUrl.searchParams.set('options', `-c search_path=${schema}`);
const masterKey = randomBytes(32).toString('base64');

/** Starts serve `i` (HTTP 18180+i, edge 18480+i) and waits for both ports. */
async function serve(i) {
  const env = {
    ...process.env,
    TWOWAY_DATABASE_URL: databaseUrl.toString(),
    TWOWAY_MASTER_KEY: masterKey,
    TWOWAY_OPERATOR_TOKEN: OPERATOR,
    TWOWAY_DATA_DIR: join(dir, `data-${i}`),
    TWOWAY_HTTP_PORT: String(18180 + i),
    TWOWAY_EDGE_PORT: String(18480 + i),
    TWOWAY_HOST: '127.0.0.1',
    TWOWAY_LOG_LEVEL: 'warn',
    TWOWAY_CHANGE_POLL_INTERVAL_MS: '60000',
  };
  const child = start('node', [join(root, 'dist/cli/index.js'), 'serve'], { env });
  await waitForPort(18180 + i, 30_000);
  await waitForPort(18480 + i, 30_000);
  return { child, api: `http://127.0.0.1:${18180 + i}`, edge: `https://127.0.0.1:${18480 + i}` };
}

async function call(api, path, token, init = {}) {
  const headers = { authorization: `Bearer ${token}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${api}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/**
 * Calls `check` until it is true, 1 ms apart (back to back, two probing loops would take both
 * cores from the processes they measure); the ms from `since` to the answer that said so.
 */
async function until(since, check) {
  const deadline = since + 10_000;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('not applied within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return performance.now() - since;
}

/**
 * The floor: when PostgreSQL delivers each announcement to a listener in this process (what every
 * serve receives at the same moment), in ms after `since` of the change it announces.
 */
async function listenHere(url) {
  const { changeChannel } = await import(join(root, 'dist/store/postgres-changes.js'));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const arrivals = new Map();
  client.on('notification', (message) => arrivals.set(Number(message.payload), performance.now()));
  await client.query(`LISTEN "${changeChannel(schema)}"`);
  return { client, arrivals };
}

/** GET the edge hello with a client certificate over a new TLS connection; its status, 0 if refused. */
function edgeHello(edge, ca, cert, key, apiKey) {
  return new Promise((resolve) => {
    const req = request(`${edge}/v1/tenants/bench/mtls/hello`, {
      ca,
      cert,
      key,
      agent: false,
      servername: 'localhost',
      headers: { authorization: `Bearer ${apiKey}` },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  const round = (x) => Math.round(x * 10) / 10;
  return { n: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1)) };
}

const serves = [];
let here;
try {
  // One at a time: the first creates the platform CA, the others find it.
  for (let i = 0; i < 3; i++) serves.push(await serve(i));
  const created = await call(serves[0].api, '/v1/tenants', OPERATOR, {
    method: 'POST',
    json: { id: 'bench', name: 'Bench' },
  });
  const apiKey = created.body.apiKey;

  here = await listenHere(values.url);
  const notifyMs = [];
  const apiKeyMs = [];
  for (let n = 0; n < Number(values.changes); n++) {
    const [writer, ...readers] = [0, 1, 2].map((k) => serves[(n + k) % 3]);
    const key = (await call(writer.api, '/v1/tenants/bench/api-keys', apiKey, { method: 'POST' })).body;
    for (const reader of readers) {
      if ((await call(reader.api, '/v1/tenants/bench', key.apiKey)).status !== 200)
        throw new Error('key not admitted');
    }
    const before = Math.max(0, ...here.arrivals.keys());
    const revoked = await call(writer.api, `/v1/tenants/bench/api-keys/${key.id}`, apiKey, {
      method: 'DELETE',
    });
    if (revoked.status !== 204) throw new Error(`revoke: ${revoked.status}`);
    const since = performance.now();
    const announced = async () => {
      const later = () => [...here.arrivals.keys()].filter((revision) => revision > before);
      await until(since, async () => later().length > 0);
      return here.arrivals.get(Math.min(...later())) - since;
    };
    const [notified, ...times] = await Promise.all([
      announced(),
      ...readers.map((reader) =>
        until(since, async () => (await call(reader.api, '/v1/tenants/bench', key.apiKey)).status === 401),
      ),
    ]);
    notifyMs.push(notified);
    apiKeyMs.push(...times);
  }

  const ca = await (await fetch(`${serves[0].api}/v1/ca/certificates`)).text();
  const edgeMs = [];
  for (let n = 0; n < Number(values.revocations); n++) {
    const made =
      'req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout c.key -out c.pem -days 2';
    execFileSync('openssl', [...made.split(' '), '-subj', `/CN=bench-${n}`], { cwd: dir, stdio: 'pipe' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    const key = readFileSync(join(dir, 'c.key'), 'utf8');
    const registered = await call(serves[0].api, '/v1/tenants/bench/client-certificates', apiKey, {
      method: 'POST',
      json: { certificatePem: cert },
    });
    const hello = () => edgeHello(serves[1].edge, ca, cert, key, apiKey);
    await until(performance.now(), async () => (await hello()) === 200);
    const revoked = await call(
      serves[0].api,
      `/v1/tenants/bench/client-certificates/${registered.body.id}/revoke`,
      apiKey,
      { method: 'POST' },
    );
    if (revoked.status !== 200) throw new Error(`revoke: ${revoked.status}`);
    edgeMs.push(await until(performance.now(), async () => (await hello()) !== 200));
  }

  const result = {
    processes: 3,
    pollIntervalMs: 60_000,
    // The machine is shared: a load far above its cores stretches the tail.
    loadAverage1m: Math.round(loadavg()[0] * 10) / 10,
    // Negative: PostgreSQL delivered the announcement before the revoking answer reached the bench.
    notifyDeliveryMs: stats(notifyMs),
    apiKeyRevocationMs: stats(apiKeyMs),
    edgeRevocationMs: stats(edgeMs),
  };
  writeFileSync(
    join(root, 'bench/results', `propagation-${new Date().toISOString().slice(0, 16)}.json`),
    `${JSON.stringify(result, null, 2)}\n`,
  );
  console.log(JSON.stringify(result, null, 2));
} finally {
  for (const s of serves) await stop(s.child);
  await here?.client.end();
  await admin.query(`drop schema if exists ${schema} cascade`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
}
