// CPU profile of one hot path under load, for flame graphs and a quick table.
// Usage: npm run bench:profile [-- --path forward|forward-connection|edge-keepalive|edge-handshakes --seconds 8]
// (`forward-connection`: the forward through a connection with header auth and the switch on.)
// Starts the upstream and `twoway serve` with `node --cpu-prof`, warms up, loads the path for
// `seconds` (wrk for the forward, bench/mtls-load.mjs for the edge), stops Twoway, and then:
// - prints the functions with the most self time and the most inclusive time, counted only over
//   the measured window (start-up, imports and warm-up are left out), idle time excluded;
// - leaves the whole `.cpuprofile` in a temporary folder (its path is printed): open it in Chrome
//   DevTools (Performance → Load profile) or https://www.speedscope.app for the flame graph.
// The profiler's own overhead makes every figure here slower than `npm run bench`; read shares.
// V8 samples wall time: a syscall during which the process was preempted (the peer it woke up ran
// on the same core) counts as the syscall's, so `writev` and friends look larger than their CPU;
// `perf record -g -p <pid>` (with `node --perf-basic-prof`) gives CPU-only samples.
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  addForwardTenant,
  cpuOf,
  makeCertificates,
  post,
  prepareEdgeStore,
  start,
  stop,
  waitForPort,
  wrk,
} from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const { values: opts } = parseArgs({
  options: { path: { type: 'string', default: 'forward' }, seconds: { type: 'string', default: '8' } },
});
const seconds = Number(opts.seconds);
const paths = ['forward', 'forward-connection', 'edge-keepalive', 'edge-handshakes'];
if (!paths.includes(opts.path)) throw new Error(`--path must be one of ${paths.join(', ')}`);
execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });

const dir = mkdtempSync(join(tmpdir(), 'twoway-profile-'));
const profileDir = join(dir, 'profile');
const ports = { http: 18280, edge: 18643, upstream: 19543, plain: 19580 };
const token = 'bench-operator-token-0123456789';

/** `twoway serve` with the CPU profiler on; resolves once the HTTP port answers. */
async function startProfiled(env) {
  const child = start(
    'node',
    [
      '--cpu-prof',
      '--cpu-prof-interval=250',
      `--cpu-prof-dir=${profileDir}`,
      join(root, 'dist/cli/index.js'),
      'serve',
    ],
    {
      env: {
        ...process.env,
        TWOWAY_HTTP_PORT: String(ports.http),
        TWOWAY_OPERATOR_TOKEN: token,
        TWOWAY_LOG_LEVEL: 'warn',
        ...env,
      },
    },
  );
  await waitForPort(ports.http, 30_000);
  return child;
}

/** Forks a bench helper that answers 'ready' over IPC. */
async function forkReady(script, args) {
  const child = fork(join(root, script), args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  return child;
}

/** Sets up `opts.path` and returns `run(seconds)` → { operations, cpuSeconds } plus what to stop. */
async function prepare() {
  if (opts.path.startsWith('forward')) {
    makeCertificates(dir, 1);
    const upstream = await forkReady('bench/upstream.mjs', [
      join(dir, 'server.pem'),
      join(dir, 'server.key'),
      join(dir, 'ca.pem'),
      String(ports.upstream),
    ]);
    const twoway = await startProfiled({
      TWOWAY_DATA_DIR: join(dir, 'data'),
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_EDGE_PORT: '0',
    });
    const api = `http://127.0.0.1:${ports.http}`;
    const apiKey = await addForwardTenant(api, token, {
      id: 'bench',
      p12File: join(dir, 'client0.p12'),
      upstreamUrl: `https://localhost:${ports.upstream}/`,
      caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    });
    let headers = {
      authorization: `Bearer ${apiKey}`,
      'twoway-service': 'api',
      'twoway-forward-url': `https://localhost:${ports.upstream}/hello`,
    };
    if (opts.path === 'forward-connection') {
      await post(
        api,
        '/v1/tenants/bench/connections',
        {
          name: 'header',
          baseUrl: `https://localhost:${ports.upstream}/`,
          auth: { type: 'header', headerName: 'X-Api-Key', headerValue: 'bench-api-key' },
          clientCertificate: { enabled: true },
          trustAnchorsPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
        },
        apiKey,
      );
      headers = {
        authorization: `Bearer ${apiKey}`,
        'twoway-connection': 'header',
        'twoway-forward-url': 'hello',
      };
    }
    const run = async (s) => {
      const result = wrk(`${api}/v1/runtime/forward`, { seconds: s, connections: 16, headers });
      return { operations: result.requests };
    };
    return { twoway, others: [upstream], run };
  }
  // The edge: a tenant's self-signed RSA-2048 certificate, as tenants are told to make one.
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-sha256', '-days', '30', '-nodes', '-keyout', 'c.key'].concat([
      '-out',
      'c.pem',
      '-subj',
      '/CN=profile-client',
      '-addext',
      'extendedKeyUsage=clientAuth',
    ]),
    { cwd: dir, stdio: 'pipe' },
  );
  const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
  const key = readFileSync(join(dir, 'c.key'), 'utf8');
  const apiKey = await prepareEdgeStore(root, join(dir, 'data'), [cert], 10);
  const plain = await forkReady('bench/plain-upstream.mjs', [String(ports.plain)]);
  const twoway = await startProfiled({
    TWOWAY_DATA_DIR: join(dir, 'data'),
    TWOWAY_EDGE_PORT: String(ports.edge),
    TWOWAY_EDGE_UPSTREAM: `http://127.0.0.1:${ports.plain}`,
  });
  await waitForPort(ports.edge, 30_000);
  const ca = await (await fetch(`http://127.0.0.1:${ports.http}/v1/ca/certificates`)).text();
  const mode = opts.path === 'edge-handshakes' ? 'handshakes' : 'keepalive';
  const run = (s) =>
    new Promise((resolve, reject) => {
      const load = fork(
        join(root, 'bench/mtls-load.mjs'),
        [
          'run',
          JSON.stringify({
            mode,
            seconds: s,
            connections: 8,
            port: ports.edge,
            ca,
            cert,
            key,
            path: '/api/hello',
            headers: { authorization: `Bearer ${apiKey}` },
          }),
        ],
        { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
      );
      load.once('message', (m) => resolve({ operations: m.done }));
      load.once('exit', (code) => code !== 0 && reject(new Error(`load exited ${code}`)));
    });
  return { twoway, others: [plain], run };
}

/** Self and inclusive shares per function over the profile samples taken in [from, to] (µs). */
function summarise(profile, from, to) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const name = (cf) =>
    `${cf.functionName || '(anonymous)'} ${cf.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')}:${cf.lineNumber + 1}`;
  const self = new Map();
  const inclusive = new Map();
  let busy = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i];
    if (t < from || t > to) return;
    const node = byId.get(id);
    if (node.callFrame.functionName === '(idle)') return;
    busy += 1;
    self.set(name(node.callFrame), (self.get(name(node.callFrame)) ?? 0) + 1);
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const key = name(byId.get(cur).callFrame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + 1);
    }
  });
  const top = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, c]) => `${((c / busy) * 100).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return { busy, self: top(self, 30), inclusive: top(inclusive, 40) };
}

const { twoway, others, run } = await prepare();
try {
  await run(3); // warm-up: JIT, pools, TLS sessions
  const before = cpuOf([twoway.pid]);
  const measuredFrom = Date.now();
  const { operations } = await run(seconds);
  const measuredTo = Date.now();
  const cpu = cpuOf([twoway.pid]) - before;
  await stop(twoway); // the profile is written on exit
  const file = join(profileDir, readdirSync(profileDir)[0]);
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  // Map wall-clock to profile time through the profile's end (written right after the stop).
  const end = profile.endTime;
  const stoppedAt = Date.now();
  const window = summarise(
    profile,
    end - (stoppedAt - measuredFrom) * 1000,
    end - (stoppedAt - measuredTo) * 1000,
  );
  console.log(
    `${opts.path}: ${operations} operations in ${seconds} s, ${((cpu / operations) * 1e6).toFixed(1)} µs of Twoway CPU each (profiler on)`,
  );
  console.log(`\nself time, share of ${window.busy} busy samples in the measured window:\n${window.self}`);
  console.log(`\ninclusive time:\n${window.inclusive}`);
  console.log(`\nwhole profile (flame graph: Chrome DevTools or speedscope.app): ${file}`);
} finally {
  await stop(twoway);
  for (const child of others) child.kill();
}
