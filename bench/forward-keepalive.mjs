// Forwarded requests per second with keep-alive, measured by wrk from a second process, and the
// proxy CPU per request (user + system from /proc). Bounded: one warm-up and one measured run.
// Usage: npm run build && node bench/forward-keepalive.mjs [seconds=10] [connections=16]
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 16);
const dir = mkdtempSync(join(tmpdir(), 'twoway-bench-'));
const root = new URL('..', import.meta.url).pathname;
const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
const children = [];

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
}

async function waitFor(url) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

function wrk(url, headers) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const out = execFileSync('wrk', [...args, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const p50 = /50%\s+(\S+)/.exec(out)?.[1];
  const p99 = /99%\s+(\S+)/.exec(out)?.[1];
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
  return { rps, requests, p50, p99, errors: Number(errors) };
}

try {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Bench CA',
  );
  writeFileSync(join(dir, 'srv.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'cli.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, ext] of [
    ['server', 'srv.ext'],
    ['client', 'cli.ext'],
  ]) {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=bench-${name}`,
    );
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      `${name}.pem`,
      '-extfile',
      ext,
    );
  }
  openssl(
    'pkcs12',
    '-export',
    '-in',
    'client.pem',
    '-inkey',
    'client.key',
    '-out',
    'client.p12',
    '-passout',
    'pass:bench',
  );

  const upstreamPort = 19443;
  const upstream = fork(join(root, 'bench/upstream.mjs'), [
    join(dir, 'server.pem'),
    join(dir, 'server.key'),
    join(dir, 'ca.pem'),
    String(upstreamPort),
  ]);
  children.push(upstream);
  await new Promise((r) => upstream.once('message', r));

  const apiPort = 18080;
  const token = 'bench-operator-token-0123456789';
  const twoway = spawn('node', [join(root, 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: String(apiPort),
      TWOWAY_DATA_DIR: join(dir, 'data'),
      TWOWAY_OPERATOR_TOKEN: token,
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_LOG_LEVEL: 'warn',
    },
    stdio: 'inherit',
  });
  children.push(twoway);
  const api = `http://127.0.0.1:${apiPort}`;
  await waitFor(`${api}/healthz`);
  const call = async (path, body, auth = token) => {
    const init = { method: 'POST', headers: { authorization: `Bearer ${auth}` } };
    if (body instanceof FormData) init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers['content-type'] = 'application/json';
    }
    const response = await fetch(`${api}${path}`, init);
    if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
    return response.json();
  };
  const { apiKey } = await call('/v1/tenants', { id: 'bench', name: 'Bench' });
  const form = new FormData();
  form.set('file', new Blob([readFileSync(join(dir, 'client.p12'))]), 'client.p12');
  form.set('password', 'bench');
  const identity = await call('/v1/tenants/bench/identities', form, apiKey);
  await call(
    '/v1/tenants/bench/mappings',
    {
      name: 'bench',
      service: 'api',
      url: `https://127.0.0.1:${upstreamPort}/`,
      identityId: identity.id,
      trustAnchorsPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    },
    apiKey,
  );

  const headers = {
    authorization: `Bearer ${apiKey}`,
    'twoway-service': 'api',
    'twoway-forward-url': `https://127.0.0.1:${upstreamPort}/hello`,
  };
  const saved = seconds;
  wrk(`${api}/v1/runtime/forward`, headers); // warm-up (same length)
  const cpuBefore = cpuSeconds(twoway.pid);
  const result = wrk(`${api}/v1/runtime/forward`, headers);
  const cpu = cpuSeconds(twoway.pid) - cpuBefore;
  const report = {
    scenario: 'forward, keep-alive, 13-byte body, RSA-2048 client certificate',
    seconds: saved,
    connections,
    requestsPerSecond: Math.round(result.rps),
    p50: result.p50,
    p99: result.p99,
    non2xx: result.errors,
    proxyCpuMicrosecondsPerRequest: Math.round((cpu / result.requests) * 1e6),
    node: process.version,
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
