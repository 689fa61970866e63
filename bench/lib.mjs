// Shared pieces of the benchmark harness: tools, certificates, processes, load runs, CPU readings.
// Everything runs on loopback; every run is bounded in time; every process is stopped by PID.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/** Installs missing Debian packages (root, apt); returns the tools that are still missing. */
export function ensureTools(tools) {
  const has = (bin) => ['/usr/sbin/', '/usr/bin/', '/usr/local/bin/'].some((d) => existsSync(d + bin));
  const missing = tools.filter((t) => !has(t));
  if (missing.length > 0) {
    try {
      execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      // Debian starts the packaged daemons; the harness runs its own instances.
      for (const t of missing) spawnSyncQuiet('pkill', ['-x', t]);
    } catch (err) {
      console.error(`could not install ${missing.join(', ')}: ${err.message}`);
    }
  }
  return tools.filter((t) => !has(t));
}

function spawnSyncQuiet(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {}
}

/** Version line of a tool, for the report. */
export function versionOf(cmd, args) {
  try {
    const out = execFileSync('sh', ['-c', `${cmd} ${args.join(' ')} 2>&1`], { encoding: 'utf8' });
    return out.split('\n')[0].trim();
  } catch (err) {
    return String(err.stdout ?? '')
      .split('\n')[0]
      .trim();
  }
}

/**
 * A CA, a server certificate for 127.0.0.1 and `clients` client certificates (RSA-2048 unless
 * `keyType` is 'ec'), written to `dir` with the openssl CLI. Client i is `client<i>.pem/.key/.p12`
 * (password `bench`), plus `client<i>-full.pem` (cert + key, for HAProxy `crt`).
 */
export function makeCertificates(dir, clients = 1, keyType = 'rsa') {
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
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
    '3',
    '-subj',
    '/CN=Bench CA',
  );
  writeFileSync(
    join(dir, 'srv.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  writeFileSync(join(dir, 'cli.ext'), 'extendedKeyUsage=clientAuth\n');
  const newKey =
    keyType === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  const issue = (name, ext, cn) => {
    openssl(
      'req',
      ...newKey,
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
      '-subj',
      `/CN=${cn}`,
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
      '3',
      '-out',
      `${name}.pem`,
      '-extfile',
      ext,
    );
  };
  issue('server', 'srv.ext', 'bench-server');
  for (let i = 0; i < clients; i++) {
    issue(`client${i}`, 'cli.ext', `bench-client-${i}`);
    openssl(
      'pkcs12',
      '-export',
      '-in',
      `client${i}.pem`,
      '-inkey',
      `client${i}.key`,
      '-out',
      `client${i}.p12`,
      '-passout',
      'pass:bench',
    );
    writeFileSync(
      join(dir, `client${i}-full.pem`),
      readFileSync(join(dir, `client${i}.pem`), 'utf8') + readFileSync(join(dir, `client${i}.key`), 'utf8'),
    );
  }
}

/** Resolves when 127.0.0.1:port accepts a TCP connection (10 s at most). */
export async function waitForPort(port, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

const children = new Set();
/** Registers a child process so that it is killed when the harness exits. */
export function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
/** Spawns a long-running process that is killed on exit. */
export function start(cmd, args, options = {}) {
  return track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], ...options }));
}
export async function stop(child) {
  if (!child || child.exitCode !== null) return;
  await new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 3_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
export function stopAll() {
  for (const child of children) child.kill('SIGKILL');
}
process.on('exit', stopAll);

/** user + system CPU seconds of a process, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The PIDs of a process and all its descendants (a primary with workers). */
export function processTree(pid) {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    try {
      const children = readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'utf8').trim();
      if (children) all.push(...children.split(/\s+/).map(Number));
    } catch {}
  }
  return all;
}

/** Sum of cpuSeconds over several PIDs and their descendants (a proxy with workers). */
export function cpuOf(pids) {
  return pids.flatMap(processTree).reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

function toMs(text) {
  if (!text) return null;
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return null;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/**
 * One wrk run (1 thread) against `url`; returns req/s, request count, p50/p99 in ms, non-2xx count
 * and socket errors. `script` is an optional Lua file (e.g. spreading requests over tenants).
 */
export function wrk(url, { seconds = 5, connections = 16, headers = {}, script } = {}) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  if (script) args.push('-s', script);
  const out = execFileSync('wrk', [...args, url], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    p50: toMs(/50%\s+(\S+)/.exec(out)?.[1]),
    p99: toMs(/99%\s+(\S+)/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Prepares a data folder for an edge benchmark, through the built store (run `npm run build` first):
 * tenant `bench`, the given real client certificates (PEM) registered, and synthetic rows up to
 * `count` in all (the edge index keys on the fingerprint only, so random fingerprints suffice).
 * Returns the tenant's API key.
 */
export async function prepareEdgeStore(root, dataDir, certificatePems, count) {
  const { loadConfig } = await import(join(root, 'dist/config/config.js'));
  const { openBackends, createServices } = await import(join(root, 'dist/main.js'));
  const config = loadConfig({ TWOWAY_DATA_DIR: dataDir, TWOWAY_LOG_LEVEL: 'warn' });
  const backends = await openBackends(config);
  try {
    const services = createServices(backends, config);
    await services.ca.ensure();
    const { apiKey } = await services.tenants.createTenant('bench', 'Bench');
    const real = [];
    for (const [i, pem] of certificatePems.entries()) {
      real.push(await services.clientCertificates.register('bench', `bench client ${i}`, Buffer.from(pem)));
    }
    const template = await backends.store.getClientCertificate('bench', real[0].id);
    const now = new Date();
    const batch = [];
    for (let i = real.length; i < count; i++) {
      batch.push({
        ...template,
        id: `ccr_bench_${i}`,
        name: `synthetic ${i}`,
        summary: {
          ...template.summary,
          fingerprintSha256: randomBytes(32).toString('hex'),
          serialNumber: randomBytes(16).toString('hex').toUpperCase(),
        },
        createdAt: now,
        updatedAt: now,
      });
      if (batch.length === 10_000) await backends.store.createClientCertificates('bench', batch.splice(0));
    }
    if (batch.length > 0) await backends.store.createClientCertificates('bench', batch);
    return apiKey;
  } finally {
    await backends.store.close();
    await backends.kms.close();
  }
}

/** POSTs JSON (or a FormData) to Twoway's API with a bearer token; throws on a non-2xx answer. */
export async function post(api, path, body, token) {
  const init = { method: 'POST', headers: { authorization: `Bearer ${token}` } };
  if (body instanceof FormData) init.body = body;
  else {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const response = await fetch(`${api}${path}`, init);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/**
 * Creates tenant `id` through Twoway's API (operator `token`) with the PKCS#12 identity `p12File`
 * (password `bench`, as makeCertificates writes it), mapped as service `api` to `upstreamUrl` with
 * `caPem` as trust anchors; returns the tenant's API key.
 */
export async function addForwardTenant(api, token, { id, p12File, upstreamUrl, caPem }) {
  const { apiKey } = await post(api, '/v1/tenants', { id, name: id }, token);
  const form = new FormData();
  form.set('file', new Blob([readFileSync(p12File)]), 'client.p12');
  form.set('password', 'bench');
  const identity = await post(api, `/v1/tenants/${id}/identities`, form, apiKey);
  await post(
    api,
    `/v1/tenants/${id}/mappings`,
    { name: 'bench', service: 'api', url: upstreamUrl, identityId: identity.id, trustAnchorsPem: caPem },
    apiKey,
  );
  return apiKey;
}
