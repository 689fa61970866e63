// Added latency of Twoway's forward over a direct mTLS call, at moderate load: the same Node client
// (bench/mtls-load.mjs, 2 keep-alive connections) calls the upstream directly with the client
// certificate, then through Twoway's /v1/runtime/forward; p50/p99 of both and the difference.
// Usage: npm run build && node bench/latency.mjs [seconds=5] [rounds=3]
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCertificates, median, post, start, stopAll, track, waitForPort } from './lib.mjs';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 3);
const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'twoway-latency-'));
const run = (options) =>
  new Promise((resolve, reject) => {
    const child = fork(join(root, 'bench/mtls-load.mjs'), ['run', JSON.stringify(options)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.once('message', resolve);
    child.once('exit', (code) => code !== 0 && reject(new Error(`load exited ${code}`)));
  });
try {
  makeCertificates(dir, 1);
  const read = (f) => readFileSync(join(dir, f), 'utf8');
  const upstream = track(
    fork(
      join(root, 'bench/upstream.mjs'),
      [join(dir, 'server.pem'), join(dir, 'server.key'), join(dir, 'ca.pem'), '19543'],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    ),
  );
  await new Promise((r) => upstream.once('message', r));
  const token = 'bench-operator-token-0123456789';
  start('node', [join(root, 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: '18180',
      TWOWAY_EDGE_PORT: '0',
      TWOWAY_DATA_DIR: join(dir, 'data'),
      TWOWAY_OPERATOR_TOKEN: token,
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_LOG_LEVEL: 'warn',
    },
  });
  await waitForPort(18180, 20_000);
  const api = 'http://127.0.0.1:18180';
  const call = (path, body, auth = token) => post(api, path, body, auth);
  const { apiKey } = await call('/v1/tenants', { id: 'lat', name: 'lat' });
  const form = new FormData();
  form.set('file', new Blob([readFileSync(join(dir, 'client0.p12'))]), 'c.p12');
  form.set('password', 'bench');
  const identity = await call('/v1/tenants/lat/identities', form, apiKey);
  await call(
    '/v1/tenants/lat/mappings',
    {
      name: 'm',
      service: 'api',
      url: 'https://localhost:19543/',
      identityId: identity.id,
      trustAnchorsPem: read('ca.pem'),
    },
    apiKey,
  );
  const direct = {
    mode: 'keepalive',
    connections: 2,
    seconds,
    port: 19543,
    ca: read('ca.pem'),
    cert: read('client0.pem'),
    key: read('client0.key'),
    path: '/hello',
  };
  const through = {
    mode: 'keepalive',
    plain: true,
    connections: 2,
    seconds,
    port: 18180,
    path: '/v1/runtime/forward',
    headers: {
      authorization: `Bearer ${apiKey}`,
      'twoway-service': 'api',
      'twoway-forward-url': 'https://localhost:19543/hello',
    },
  };
  await run({ ...direct, seconds: 1 });
  await run({ ...through, seconds: 1 });
  const samples = { direct: [], twoway: [] };
  for (let r = 0; r < rounds; r++) {
    samples.direct.push(await run(direct));
    samples.twoway.push(await run(through));
  }
  const summary = (list) => ({
    rps: median(list.map((x) => (x.done / x.ms) * 1000)),
    p50Ms: median(list.map((x) => x.latenciesMs[0])),
    p99Ms: median(list.map((x) => x.latenciesMs[1])),
    failed: list.reduce((a, x) => a + x.failed, 0),
  });
  const d = summary(samples.direct);
  const t = summary(samples.twoway);
  console.log(
    JSON.stringify(
      { direct: d, twoway: t, addedP50Ms: t.p50Ms - d.p50Ms, addedP99Ms: t.p99Ms - d.p99Ms },
      null,
      2,
    ),
  );
} finally {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
}
