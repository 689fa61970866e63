// Edge listener throughput with 10 and with 100,000 registered client certificates: full mTLS
// handshakes per second (a new TLS connection per request, no session resumption) and keep-alive
// requests per second, both against GET /v1/tenants/{tenant}/mtls/hello with the tenant's API key,
// plus the edge's CPU per handshake / per request (user + system from /proc, the stable figure on a
// shared machine). The load runs in a second process. Bounded: a warm-up, then `rounds` measured runs
// per scenario, alternating between the two servers. The 100,000 are bulk-inserted through the store before the server starts (one is real, the
// others are synthetic rows with random fingerprints: the index only keys on the fingerprint).
// Usage: npm run build && node bench/edge-handshakes.mjs [secondsPerRun=4] [rounds=5] [connections=8]
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, median, prepareEdgeStore } from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;

const seconds = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 5);
const connections = Number(process.argv[4] ?? 8);

async function waitFor(url) {
  for (let i = 0; i < 600; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/** One load run in a second process (bench/mtls-load.mjs): hello endpoint with the tenant's API key. */
function runLoad({ apiKey, ...options }) {
  const child = fork(join(root, 'bench/mtls-load.mjs'), [
    'run',
    JSON.stringify({
      ...options,
      path: '/v1/tenants/bench/mtls/hello',
      headers: { authorization: `Bearer ${apiKey}` },
    }),
  ]);
  return new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => code !== 0 && reject(new Error(`load exited ${code}`)));
  });
}

/** Prepares a data folder with `count` certificates and starts `twoway serve` on it. */
async function startServer(count, dir, client, ports) {
  const dataDir = join(dir, `data-${count}`);
  const preparedAt = performance.now();
  const apiKey = await prepareEdgeStore(root, dataDir, [client.certPem], count);
  const prepareSeconds = Math.round((performance.now() - preparedAt) / 100) / 10;
  const server = spawn('node', [join(root, 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: String(ports.http),
      TWOWAY_EDGE_PORT: String(ports.edge),
      TWOWAY_DATA_DIR: dataDir,
      TWOWAY_LOG_LEVEL: 'warn',
    },
    stdio: 'inherit',
  });
  await waitFor(`http://127.0.0.1:${ports.http}/readyz`);
  // Start-up work (the first expiry scan reads every certificate) must be over before measuring:
  // wait until the server used under 2% of a core for one second.
  for (let i = 0; i < 120; i++) {
    const before = cpuSeconds(server.pid);
    await new Promise((r) => setTimeout(r, 1000));
    if (cpuSeconds(server.pid) - before < 0.02) break;
  }
  const ca = await (await fetch(`http://127.0.0.1:${ports.http}/v1/ca/certificates`)).text();
  return {
    count,
    prepareSeconds,
    server,
    load: { connections, port: ports.edge, ca, cert: client.certPem, key: client.keyPem, apiKey },
  };
}

/** One measured run against one server: operations per second and the server's CPU per operation. */
async function measure(target, mode, runSeconds) {
  const before = cpuSeconds(target.server.pid);
  const run = await runLoad({ ...target.load, mode, seconds: runSeconds });
  const cpu = cpuSeconds(target.server.pid) - before;
  return {
    perSecond: (run.done / run.ms) * 1000,
    cpuMicroseconds: (cpu / run.done) * 1e6,
    failed: run.failed,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'twoway-bench-edge-'));
try {
  // The client certificate exactly as tenants are told to make one (README).
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-days', '365', '-nodes'].concat([
      '-keyout',
      'client.key',
      '-out',
      'client.crt',
      '-subj',
      '/CN=bench-client',
    ]),
    { cwd: dir, stdio: 'pipe' },
  );
  const client = {
    certPem: readFileSync(join(dir, 'client.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'client.key'), 'utf8'),
  };
  const targets = [
    await startServer(10, dir, client, { http: 18180, edge: 18543 }),
    await startServer(100_000, dir, client, { http: 18181, edge: 18544 }),
  ];
  try {
    // Both servers run side by side and the rounds alternate between them (ABBA...), so that a
    // change in background load hits both scenarios alike; medians are reported.
    const results = Object.fromEntries(
      targets.map((t) => [t.count, { registeredCertificates: t.count, prepareSeconds: t.prepareSeconds }]),
    );
    for (const mode of ['handshakes', 'keepalive']) {
      for (const target of targets) await measure(target, mode, 2); // warm-up
      const runs = new Map(targets.map((t) => [t.count, []]));
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? targets : [...targets].reverse();
        for (const target of order) runs.get(target.count).push(await measure(target, mode, seconds));
      }
      for (const target of targets) {
        const list = runs.get(target.count);
        results[target.count][mode] = {
          perSecond: Math.round(median(list.map((r) => r.perSecond))),
          edgeCpuMicroseconds: Math.round(median(list.map((r) => r.cpuMicroseconds))),
          perSecondRuns: list.map((r) => Math.round(r.perSecond)),
          failed: list.reduce((n, r) => n + r.failed, 0),
        };
      }
    }
    const small = results[10];
    const large = results[100_000];
    const ratio = (a, b) => Math.round((a / b) * 1000) / 1000;
    console.log(
      JSON.stringify(
        {
          scenario:
            'edge GET hello, RSA-2048 self-signed client certificate, TLS 1.3, ECDSA P-256 server certificate',
          secondsPerRun: seconds,
          rounds,
          connections,
          results: [small, large],
          handshakesPerSecondRatio100kTo10: ratio(large.handshakes.perSecond, small.handshakes.perSecond),
          handshakeCpuRatio100kTo10: ratio(
            large.handshakes.edgeCpuMicroseconds,
            small.handshakes.edgeCpuMicroseconds,
          ),
          keepalivePerSecondRatio100kTo10: ratio(large.keepalive.perSecond, small.keepalive.perSecond),
          keepaliveCpuRatio100kTo10: ratio(
            large.keepalive.edgeCpuMicroseconds,
            small.keepalive.edgeCpuMicroseconds,
          ),
          node: process.version,
        },
        null,
        2,
      ),
    );
  } finally {
    for (const target of targets) target.server.kill('SIGTERM');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
