// KEK rotation under load: N identities sealed under the local KEK, a server that has moved to a
// SoftHSM2 token (the local key still opens old rows), `twoway kms rotate` run as its own process
// while one client forwards sequentially through the server. Prints rows per second and forward
// latency before and during the rewrap. Usage: npm run build && node bench/kms-rotate.mjs [N]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makeCertificates, median } from './lib.mjs';

const root = resolve(import.meta.dirname, '..');
const { loadConfig } = await import(join(root, 'dist/config/config.js'));
const { openBackends, createServices, startTwoway } = await import(join(root, 'dist/main.js'));
const { seal, identityKeyAad } = await import(join(root, 'dist/kms/envelope.js'));

const count = Number(process.argv[2] ?? 10_000);
const dir = mkdtempSync(join(tmpdir(), 'twoway-bench-rotate-'));
try {
  makeCertificates(dir, 1, 'ec');
  const conf = join(dir, 'softhsm2.conf');
  mkdirSync(join(dir, 'tokens'));
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', [
    '--init-token',
    '--free',
    '--label',
    'bench',
    '--so-pin',
    '0000',
    '--pin',
    '1234',
  ]);
  const base = { TWOWAY_DATA_DIR: join(dir, 'data'), TWOWAY_LOG_LEVEL: 'warn' };
  const hsm = {
    ...base,
    TWOWAY_KMS: 'pkcs11',
    TWOWAY_PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so',
    TWOWAY_PKCS11_TOKEN_LABEL: 'bench',
    TWOWAY_PKCS11_PIN: '1234',
  };

  // Seed: one identity imported for real, then N copies of its version sealed anew for each row.
  const backends = await openBackends(loadConfig(base));
  const services = createServices(backends, loadConfig(base));
  await services.ca.ensure();
  await services.tenants.createTenant('bench', 'Bench');
  const real = await services.identities.importIdentity('bench', 'real', {
    file: readFileSync(join(dir, 'client0.p12')),
    password: 'bench',
  });
  const template = await backends.store.getVersion('bench', real.id, 1);
  const der = readFileSync(join(dir, 'client0.key'));
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const id = `idn_bench${String(i).padStart(6, '0')}`;
    const now = new Date();
    await backends.store.createIdentity(
      'bench',
      { id, tenantId: 'bench', name: id, activeVersion: 1, disabled: false, createdAt: now, updatedAt: now },
      { ...template, identityId: id, secret: await seal(backends.kms, der, identityKeyAad('bench', id, 1)) },
    );
  }
  console.log(`seeded ${count} identities in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await services.parser.close();
  await backends.store.close();
  await backends.kms.close();

  // The upstream and the server (moved to the token; rows still under the local KEK).
  const upstream = createServer(
    {
      key: readFileSync(join(dir, 'server.key')),
      cert: readFileSync(join(dir, 'server.pem')),
      ca: readFileSync(join(dir, 'ca.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (_req, res) => res.end('ok'),
  );
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `https://127.0.0.1:${upstream.address().port}`;
  const token = randomBytes(16).toString('hex');
  const server = await startTwoway(
    loadConfig({
      ...hsm,
      TWOWAY_HTTP_PORT: '0',
      TWOWAY_EDGE_PORT: '0',
      TWOWAY_OPERATOR_TOKEN: token,
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
    }),
  );
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  await fetch(`${server.url}/v1/tenants/bench/mappings`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      name: 'up',
      service: 'api',
      url: upstreamUrl,
      match: 'prefix',
      identityId: real.id,
      trustAnchorsPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    }),
  });
  const forward = async () => {
    const started = performance.now();
    const res = await fetch(`${server.url}/v1/runtime/forward`, {
      headers: {
        authorization: `Bearer ${token}`,
        'twoway-tenant': 'bench',
        'twoway-service': 'api',
        'twoway-forward-url': `${upstreamUrl}/x`,
      },
    });
    await res.text();
    if (res.status !== 200) throw new Error(`forward answered ${res.status}`);
    return performance.now() - started;
  };
  const sample = async (until) => {
    const samples = [];
    while (!until()) samples.push(await forward());
    return samples;
  };
  let stopBaseline = false;
  setTimeout(() => (stopBaseline = true), 5_000);
  const baseline = await sample(() => stopBaseline);

  let done = false;
  const rotate = spawn('node', [join(root, 'dist/cli/index.js'), 'kms', 'rotate', '--batch-size', '200'], {
    env: { ...process.env, ...Object.fromEntries(Object.entries(hsm).map(([k, v]) => [k, v])) },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let output = '';
  rotate.stdout.on('data', (chunk) => (output += chunk));
  const exited = new Promise((r) => rotate.on('exit', (code) => r(code)));
  exited.then(() => (done = true));
  const during = await sample(() => done);
  if ((await exited) !== 0) throw new Error('kms rotate failed');
  const summary = JSON.parse(output);
  const p = (values, q) =>
    values.slice().sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * q))];
  console.log(
    JSON.stringify(
      {
        identities: count,
        moved: summary.moved,
        seconds: summary.seconds,
        rowsPerSecond: summary.rowsPerSecond,
        forwardBefore: {
          requests: baseline.length,
          p50Ms: median(baseline).toFixed(2),
          p99Ms: p(baseline, 0.99).toFixed(2),
        },
        forwardDuring: {
          requests: during.length,
          p50Ms: median(during).toFixed(2),
          p99Ms: p(during, 0.99).toFixed(2),
        },
      },
      null,
      2,
    ),
  );
  await server.close();
  upstream.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
