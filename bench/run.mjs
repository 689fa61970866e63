// Twoway benchmark harness: runs each scenario's contenders alternately (A B C D, then rotated),
// several rounds, and reports medians and ratios against nginx, measured in the same run.
// Usage: npm run bench [-- --scenarios forward-keepalive,forward-tenants --seconds 5 --rounds 3]
// Writes bench/results/<date>.json and the tables between the markers in docs/benchmarks.md;
// `-- --render bench/results/<date>.json` rewrites those tables from a results file, running nothing.
import { execFileSync, fork } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  addForwardTenant,
  cpuOf,
  ensureTools,
  makeCertificates,
  median,
  post,
  prepareEdgeStore,
  start,
  stop,
  stopAll,
  track,
  versionOf,
  waitForPort,
  wrk,
} from './lib.mjs';

const root = new URL('..', import.meta.url).pathname;
const { values: opts } = parseArgs({
  options: {
    scenarios: {
      type: 'string',
      default: 'forward-keepalive,forward-connections,forward-handshakes,forward-tenants,edge,store-scale',
    },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    tenants: { type: 'string', default: '1000' },
    identities: { type: 'string', default: '10000' },
    edgeCounts: { type: 'string', default: '10,100000' },
    render: { type: 'string' },
  },
});
const seconds = Number(opts.seconds);
const rounds = Number(opts.rounds);
const connections = Number(opts.connections);

if (!opts.render) {
  const missing = ensureTools(['nginx', 'haproxy', 'wrk']);
  if (missing.includes('wrk')) throw new Error('wrk is required (apt-get install wrk)');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
}

const dir = mkdtempSync(join(tmpdir(), 'twoway-bench-'));
const ports = {
  upstream: 19443,
  twoway: 18080,
  nginx: 18081,
  haproxy: 18082,
  bare: 18083,
  edge: 18443,
  nginxEdge: 18444,
  nginxEdgeNoTickets: 18446,
  haproxyEdge: 18445,
  nginxNoReuse: 18085,
};
const results = { date: new Date().toISOString(), machine: machine(), scenarios: {} };

function machine() {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nginx: versionOf('nginx', ['-v']),
    haproxy: versionOf('haproxy', ['-v']),
    openssl: versionOf('openssl', ['version']),
    wrk: versionOf('wrk', ['-v']),
  };
}

// ---- contenders -------------------------------------------------------------------------------

async function startUpstream() {
  const child = track(
    fork(
      join(root, 'bench/upstream.mjs'),
      [join(dir, 'server.pem'), join(dir, 'server.key'), join(dir, 'ca.pem'), String(ports.upstream)],
      {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      },
    ),
  );
  await new Promise((r) => child.once('message', r));
  return child;
}

async function startTwoway(env = {}) {
  const data = join(dir, `data-${Date.now()}`);
  const token = 'bench-operator-token-0123456789';
  const child = start('node', [join(root, 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: String(ports.twoway),
      TWOWAY_DATA_DIR: data,
      TWOWAY_OPERATOR_TOKEN: token,
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_LOG_LEVEL: 'warn',
      TWOWAY_EDGE_PORT: '0',
      ...env,
    },
  });
  await waitForPort(ports.twoway, 20_000);
  const api = `http://127.0.0.1:${ports.twoway}`;
  /** Creates tenant `id` with the identity of client `i`, mapped to the upstream; returns its API key. */
  const addTenant = (id, i) =>
    addForwardTenant(api, token, {
      id,
      p12File: join(dir, `client${i}.p12`),
      upstreamUrl: `https://localhost:${ports.upstream}/`,
      caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    });
  return { child, pids: [child.pid], api, addTenant };
}

/**
 * A fresh certificate folder with one client, the upstream, and a Twoway with tenant `bench` mapped
 * to it: the set-up of the forward scenarios that start from nothing.
 */
async function freshForward() {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  makeCertificates(dir, 1);
  const upstream = await startUpstream();
  const twoway = await startTwoway();
  return { upstream, twoway, apiKey: await twoway.addTenant('bench', 0) };
}

/**
 * The start of an nginx configuration run from folder `n` (created with its temp folders): one
 * worker in the foreground, no access log, up to the opening of the `http` block.
 */
function nginxPreamble(n) {
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(n, sub), { recursive: true });
  return `daemon off;
master_process off;
worker_processes 1;
pid ${n}/nginx.pid;
error_log ${n}/error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${n}/body; proxy_temp_path ${n}/proxy; fastcgi_temp_path ${n}/fastcgi;
  uwsgi_temp_path ${n}/uwsgi; scgi_temp_path ${n}/scgi;`;
}

function nginxConfig(folder, port, locations, upstreams, sessionReuse) {
  return `${nginxPreamble(folder)}
${upstreams}
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_ssl_trusted_certificate ${dir}/ca.pem;
  proxy_ssl_verify on;
  proxy_ssl_name localhost;
  proxy_ssl_session_reuse ${sessionReuse ? 'on' : 'off'};
  server {
    listen 127.0.0.1:${port} reuseport;
${locations}
  }
}
`;
}

/**
 * nginx with one `location` per client certificate (`/t<i>/` → client i; `count` 1 means `/`), each
 * with its own `upstream` block. nginx keys its upstream keep-alive cache by upstream block, not by
 * client certificate: with one shared block, a connection opened with tenant 0's certificate is
 * reused for tenant 1's requests (checked by certificateCheck below, and measured: every request then
 * presented the first certificate). So the keep-alive pools are split per certificate, as Twoway's are.
 */
async function startNginx(count = 1, { port = ports.nginx, sessionReuse = true } = {}) {
  const locations =
    count === 1
      ? `    location / { proxy_pass https://b0; proxy_ssl_certificate ${dir}/client0.pem; proxy_ssl_certificate_key ${dir}/client0.key; }`
      : Array.from(
          { length: count },
          (_, i) =>
            `    location /t${i}/ { proxy_pass https://b${i}/; proxy_ssl_certificate ${dir}/client${i}.pem; proxy_ssl_certificate_key ${dir}/client${i}.key; }`,
        ).join('\n');
  const upstreams = Array.from(
    { length: count },
    (_, i) => `  upstream b${i} { server 127.0.0.1:${ports.upstream}; keepalive ${count === 1 ? 64 : 4}; }`,
  ).join('\n');
  const folder = join(dir, `nginx-${port}`);
  const conf = join(dir, `nginx-${port}.conf`);
  writeFileSync(conf, nginxConfig(folder, port, locations, upstreams, sessionReuse));
  const child = start('nginx', ['-e', join(folder, 'error.log'), '-p', folder, '-c', conf]);
  await waitForPort(port);
  return { child, pids: [child.pid] };
}

/** HAProxy's global and defaults sections, the same for every HAProxy contender: one thread. */
const HAPROXY_DEFAULTS = `global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always`;

/** HAProxy with one backend per client certificate, chosen by path prefix `/t<i>/` (or all to client 0). */
async function startHaproxy(count = 1) {
  const backends = Array.from(
    { length: count },
    (_, i) =>
      `backend be${i}
  ${count > 1 ? `http-request set-path %[path,regsub(^/t${i}/,/)]` : ''}
  server s1 127.0.0.1:${ports.upstream} ssl crt ${dir}/client${i}-full.pem ca-file ${dir}/ca.pem verify required verifyhost localhost sni str(localhost) pool-max-conn 64`,
  ).join('\n');
  const uses =
    count === 1
      ? '  default_backend be0'
      : Array.from({ length: count }, (_, i) => `  use_backend be${i} if { path_beg /t${i}/ }`).join('\n');
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(
    conf,
    `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${ports.haproxy}
${uses}
${backends}
`,
  );
  const child = start('haproxy', ['-f', conf, '-db']);
  await waitForPort(ports.haproxy);
  return { child, pids: [child.pid] };
}

async function startBare() {
  const child = start('node', [
    join(root, 'bench/bare-forwarder.mjs'),
    String(ports.bare),
    String(ports.upstream),
    join(dir, 'client0.pem'),
    join(dir, 'client0.key'),
    join(dir, 'ca.pem'),
  ]);
  await waitForPort(ports.bare);
  return { child, pids: [child.pid] };
}

// ---- measuring --------------------------------------------------------------------------------

function measure(contender, url, options) {
  const before = cpuOf(contender.pids);
  const run = wrk(url, { seconds, connections, ...options });
  const cpu = cpuOf(contender.pids) - before;
  return { ...run, cpuUsPerRequest: run.requests > 0 ? (cpu / run.requests) * 1e6 : null };
}

/** Runs `runs` (name → () => result) alternately for `rounds`, rotating the order; returns medians. */
function alternate(runs) {
  const names = Object.keys(runs);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) {
      const sample = runs[name]();
      samples[name].push(sample);
      console.log(
        `  round ${r + 1} ${name}: ${Math.round(sample.rps)} req/s, ${sample.cpuUsPerRequest?.toFixed(1)} µs CPU/req, p99 ${sample.p99} ms, non-2xx ${sample.non2xx}, errors ${sample.socketErrors}`,
      );
    }
  }
  return summarise(samples);
}

/** Medians per contender of {@link alternate}'s samples. */
function summarise(samples) {
  const summary = {};
  for (const name of Object.keys(samples)) {
    const s = samples[name];
    summary[name] = {
      rps: median(s.map((x) => x.rps)),
      cpuUsPerRequest: median(s.map((x) => x.cpuUsPerRequest)),
      p50Ms: median(s.map((x) => x.p50)),
      p99Ms: median(s.map((x) => x.p99)),
      failures: s.reduce((a, x) => a + x.non2xx + x.socketErrors, 0),
      samples: s.length,
    };
  }
  return summary;
}

function withRatios(summary, reference = 'nginx') {
  const ref = summary[reference];
  for (const value of Object.values(summary)) {
    value.rpsRatio = ref?.rps ? value.rps / ref.rps : null;
    value.cpuRatio = ref?.cpuUsPerRequest ? value.cpuUsPerRequest / ref.cpuUsPerRequest : null;
  }
  return summary;
}

/**
 * Sends 200 requests per contender (`send[c](i)` for tenant i, the same pseudo-random tenant order
 * for each, on warm keep-alive pools) to the upstream's `/whoami`, which answers the CN of the client
 * certificate it was shown, and counts the answers that are not tenant i's (`bench-client-<i>`).
 */
async function certificateCheck(count, send) {
  const names = ['twoway', 'nginx', 'haproxy'];
  const wrong = {};
  const checked = 200;
  for (const [c, request] of send.entries()) {
    let bad = 0;
    let seed = 7;
    for (let n = 0; n < checked; n++) {
      seed = (seed * 48271) % 2147483647;
      const i = seed % count;
      const answer = await request(i);
      if ((await answer.text()) !== `bench-client-${i}`) bad += 1;
    }
    wrong[names[c]] = bad;
  }
  return { checked, wrong };
}

// ---- scenarios --------------------------------------------------------------------------------

const scenarios = {
  /** 1. client → HTTP → proxy → mTLS (pooled) → upstream; 13 B and 16 KiB bodies. */
  async 'forward-keepalive'() {
    makeCertificates(dir, 1);
    const upstream = await startUpstream();
    const twoway = await startTwoway();
    const apiKey = await twoway.addTenant('bench', 0);
    const nginx = await startNginx(1);
    const haproxy = await startHaproxy(1);
    const bare = await startBare();
    // Both cores: the same Twoway with two workers (node:cluster), on its own port.
    const saved = ports.twoway;
    ports.twoway = 18084;
    const cluster = await startTwoway({ TWOWAY_WORKERS: '2', TWOWAY_EDGE_PORT: '18444' });
    const clusterKey = await cluster.addTenant('bench', 0);
    ports.twoway = saved;
    const out = {};
    try {
      for (const [label, path] of [
        ['13 B', '/hello'],
        ['16 KiB', '/large'],
      ]) {
        const twowayHeaders = {
          authorization: `Bearer ${apiKey}`,
          'twoway-service': 'api',
          'twoway-forward-url': `https://localhost:${ports.upstream}${path}`,
        };
        const clusterHeaders = { ...twowayHeaders, authorization: `Bearer ${clusterKey}` };
        // Warm every pool once (connections, TLS sessions, JIT).
        for (const [c, url, headers] of [
          [cluster, `${cluster.api}/v1/runtime/forward`, clusterHeaders],
          [twoway, `${twoway.api}/v1/runtime/forward`, twowayHeaders],
          [nginx, `http://127.0.0.1:${ports.nginx}${path}`, {}],
          [haproxy, `http://127.0.0.1:${ports.haproxy}${path}`, {}],
          [bare, `http://127.0.0.1:${ports.bare}${path}`, {}],
        ])
          measure(c, url, { headers, seconds: 2 });
        console.log(`forward-keepalive, ${label} body`);
        out[label] = withRatios(
          alternate({
            twoway: () => measure(twoway, `${twoway.api}/v1/runtime/forward`, { headers: twowayHeaders }),
            nginx: () => measure(nginx, `http://127.0.0.1:${ports.nginx}${path}`),
            haproxy: () => measure(haproxy, `http://127.0.0.1:${ports.haproxy}${path}`),
            'bare node': () => measure(bare, `http://127.0.0.1:${ports.bare}${path}`),
            'twoway, 2 workers': () =>
              measure(cluster, `${cluster.api}/v1/runtime/forward`, { headers: clusterHeaders }),
          }),
        );
      }
    } finally {
      for (const c of [twoway, nginx, haproxy, bare, cluster]) await stop(c.child);
      await stop(upstream);
    }
    return out;
  },

  /**
   * 1c. Forwards through connections beside a mapping forward, on one Twoway and one tenant: a
   * connection with header auth and one with OAuth 2.0 client credentials (client_secret_post; the
   * token is fetched once, over the same mTLS, then cached), both with the client-certificate switch
   * on, so all three present the same identity to the same upstream. Ratios are to the mapping
   * forward, measured alternately in the same run.
   */
  async 'forward-connections'() {
    const { upstream, twoway, apiKey } = await freshForward();
    const base = `https://localhost:${ports.upstream}/`;
    const common = {
      baseUrl: base,
      clientCertificate: { enabled: true },
      trustAnchorsPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    };
    await post(
      twoway.api,
      '/v1/tenants/bench/connections',
      {
        ...common,
        name: 'header',
        auth: { type: 'header', headerName: 'X-Api-Key', headerValue: 'bench-api-key' },
      },
      apiKey,
    );
    await post(
      twoway.api,
      '/v1/tenants/bench/connections',
      {
        ...common,
        name: 'oauth',
        auth: {
          type: 'oauth2_client_credentials',
          tokenUrl: `${base}oauth/token`,
          clientId: 'bench',
          clientSecret: 'bench-client-secret',
          clientAuthentication: 'client_secret_post',
        },
      },
      apiKey,
    );
    const url = `${twoway.api}/v1/runtime/forward`;
    const reference = 'twoway, mapping';
    const targets = {
      [reference]: { 'twoway-service': 'api', 'twoway-forward-url': `${base}hello` },
      'twoway, connection (header auth)': { 'twoway-connection': 'header', 'twoway-forward-url': 'hello' },
      'twoway, connection (OAuth, cached token)': {
        'twoway-connection': 'oauth',
        'twoway-forward-url': 'hello',
      },
    };
    const runs = {};
    for (const [name, h] of Object.entries(targets)) {
      const headers = { authorization: `Bearer ${apiKey}`, ...h };
      runs[name] = () => measure(twoway, url, { headers });
      // Warm the pool, the TLS session, the token and the JIT.
      measure(twoway, url, { headers, seconds: 2 });
    }
    try {
      console.log('forward-connections, 13 B body');
      return { reference, ...withRatios(alternate(runs), reference) };
    } finally {
      await stop(twoway.child);
      await stop(upstream);
    }
  },

  /**
   * 1b. A new mTLS connection to the upstream for every request: the upstream answers
   * `Connection: close` (the client's keep-alive connection to the proxy stays open). What TLS
   * session resumption toward the upstream is worth: nginx is measured with `proxy_ssl_session_reuse`
   * on (its default) and off; the upstream counts full and resumed handshakes per contender.
   */
  async 'forward-handshakes'() {
    const { upstream, twoway, apiKey } = await freshForward();
    const nginx = await startNginx(1);
    const nginxNoReuse = await startNginx(1, { port: ports.nginxNoReuse, sessionReuse: false });
    const haproxy = await startHaproxy(1);
    const bare = await startBare();
    const headers = {
      authorization: `Bearer ${apiKey}`,
      'twoway-service': 'api',
      'twoway-forward-url': `https://localhost:${ports.upstream}/close`,
    };
    const targets = {
      twoway: [twoway, `${twoway.api}/v1/runtime/forward`, headers],
      nginx: [nginx, `http://127.0.0.1:${ports.nginx}/close`, {}],
      'nginx, no session reuse': [nginxNoReuse, `http://127.0.0.1:${ports.nginxNoReuse}/close`, {}],
      haproxy: [haproxy, `http://127.0.0.1:${ports.haproxy}/close`, {}],
      'bare node': [bare, `http://127.0.0.1:${ports.bare}/close`, {}],
    };
    const handshakes = () =>
      new Promise((resolve) => {
        upstream.once('message', (m) => resolve(m.handshakes));
        upstream.send('handshakes');
      });
    const resumed = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
    try {
      for (const [c, url, h] of Object.values(targets)) measure(c, url, { headers: h, seconds: 2 });
      console.log('forward-handshakes, a new upstream connection per request');
      const runs = {};
      for (const [name, [c, url, h]] of Object.entries(targets)) {
        runs[name] = async () => {
          const before = await handshakes();
          const sample = measure(c, url, { headers: h });
          const after = await handshakes();
          const full = after.full - before.full;
          const again = after.resumed - before.resumed;
          resumed[name].push(full + again > 0 ? again / (full + again) : 0);
          return sample;
        };
      }
      const out = withRatios(await alternateAsync(runs));
      return {
        ...out,
        'upstream handshakes resumed (median share)': Object.fromEntries(
          Object.entries(resumed).map(([name, shares]) => [name, Math.round(median(shares) * 1000) / 1000]),
        ),
      };
    } finally {
      for (const c of [twoway, nginx, nginxNoReuse, haproxy, bare]) await stop(c.child);
      await stop(upstream);
    }
  },

  /** 2. Requests spread over many tenants, one identity each (nginx/HAProxy: one block per certificate). */
  async 'forward-tenants'() {
    const count = Number(opts.tenants);
    console.log(`making ${count} client certificates (EC P-256)...`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    makeCertificates(dir, count, 'ec');
    const upstream = await startUpstream();
    const twoway = await startTwoway();
    const keys = [];
    const t0 = Date.now();
    for (let i = 0; i < count; i++) keys.push(await twoway.addTenant(`t${i}`, i));
    const importsPerSecond = count / ((Date.now() - t0) / 1000);
    const nginx = await startNginx(count);
    const haproxy = await startHaproxy(count);
    // wrk Lua: each request picks a tenant at random.
    const twowayLua = join(dir, 'twoway-tenants.lua');
    writeFileSync(
      twowayLua,
      `local keys = {${keys.map((k) => `"${k}"`).join(',')}}
math.randomseed(42)
request = function()
  local i = math.random(#keys)
  wrk.headers["authorization"] = "Bearer " .. keys[i]
  wrk.headers["twoway-service"] = "api"
  wrk.headers["twoway-forward-url"] = "https://localhost:${ports.upstream}/hello"
  return wrk.format("GET", "/v1/runtime/forward")
end
`,
    );
    const pathLua = join(dir, 'path-tenants.lua');
    writeFileSync(
      pathLua,
      `math.randomseed(42)\nrequest = function()\n  return wrk.format("GET", "/t" .. (math.random(${count}) - 1) .. "/hello")\nend\n`,
    );
    try {
      // Warm-up, twice over: with 16 requests in flight over 1,000 pools, each pool opens a second or
      // third connection (a full handshake) whenever two requests for one tenant meet, so the set
      // of connections keeps growing for a while; measure once it has settled.
      for (let pass = 0; pass < 2; pass++)
        for (const [c, url, script] of [
          [twoway, `${twoway.api}/v1/runtime/forward`, twowayLua],
          [nginx, `http://127.0.0.1:${ports.nginx}/`, pathLua],
          [haproxy, `http://127.0.0.1:${ports.haproxy}/`, pathLua],
        ])
          measure(c, url, { script, seconds: Math.max(seconds, 5) });
      // Correctness before speed: each tenant's request must present that tenant's certificate.
      const check = await certificateCheck(count, [
        (i) =>
          fetch(`${twoway.api}/v1/runtime/forward`, {
            headers: {
              authorization: `Bearer ${keys[i]}`,
              'twoway-service': 'api',
              'twoway-forward-url': `https://localhost:${ports.upstream}/whoami`,
            },
          }),
        (i) => fetch(`http://127.0.0.1:${ports.nginx}/t${i}/whoami`),
        (i) => fetch(`http://127.0.0.1:${ports.haproxy}/t${i}/whoami`),
      ]);
      console.log(`wrong certificate presented, of ${check.checked} requests each:`, check.wrong);
      console.log(`forward-tenants, ${count} tenants`);
      const out = withRatios(
        alternate({
          twoway: () => measure(twoway, `${twoway.api}/v1/runtime/forward`, { script: twowayLua }),
          nginx: () => measure(nginx, `http://127.0.0.1:${ports.nginx}/`, { script: pathLua }),
          haproxy: () => measure(haproxy, `http://127.0.0.1:${ports.haproxy}/`, { script: pathLua }),
        }),
      );
      const rss = Number(
        readFileSync(`/proc/${twoway.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0,
      );
      return {
        tenants: count,
        wrongCertificatePresented: check.wrong,
        certificateChecks: check.checked,
        twowayImportsPerSecond: importsPerSecond,
        twowayRssKiBWithLivePools: rss,
        ...out,
      };
    } finally {
      for (const c of [twoway, nginx, haproxy]) await stop(c.child);
      await stop(upstream);
    }
  },

  /**
   * 5. Scale of the store: PKCS#12 imports per second (8 concurrent uploads), start-up time of
   * `twoway serve` on that store, resident memory at rest and with 1,000 live identity pools (one idle
   * upstream connection each), and memory after the idle pools closed.
   */
  async 'store-scale'() {
    const identities = Number(opts.identities ?? 10_000);
    const live = Math.min(1_000, identities);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    makeCertificates(dir, 1, 'ec');
    const upstream = await startUpstream();
    const data = join(dir, 'scale-data');
    const env = {
      TWOWAY_DATA_DIR: data,
      // Longer than opening the 1,000 pools takes (one at a time, a handshake each), so all of them
      // are live when RSS is read; they close 20 to 40 s after their last use.
      TWOWAY_FORWARD_IDLE_AGENT_TTL_MS: '20000',
      TWOWAY_FORWARD_KEEP_ALIVE_TIMEOUT_MS: '60000',
    };
    let twoway = await startTwoway(env);
    const token = 'bench-operator-token-0123456789';
    const api = twoway.api;
    const postAs = (path, body) => post(api, path, body, token);
    const tenants = 100;
    for (let t = 0; t < tenants; t++) await postAs('/v1/tenants', { id: `s${t}`, name: `s${t}` });
    const p12 = readFileSync(join(dir, 'client0.p12'));
    const ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const ids = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < identities) {
          const i = next++;
          const form = new FormData();
          form.set('file', new Blob([p12]), 'c.p12');
          form.set('password', 'bench');
          form.set('name', `id${i}`);
          const identity = await postAs(`/v1/tenants/s${i % tenants}/identities`, form);
          if (i < live) ids[i] = identity.id;
        }
      }),
    );
    const importsPerSecond = identities / ((performance.now() - t0) / 1000);
    for (let i = 0; i < live; i++) {
      await postAs(`/v1/tenants/s${i % tenants}/mappings`, {
        name: `m${i}`,
        service: `svc${i}`,
        url: `https://localhost:${ports.upstream}/`,
        identityId: ids[i],
        trustAnchorsPem: ca,
      });
    }
    await stop(twoway.child);

    const s0 = performance.now();
    twoway = await startTwoway(env);
    for (;;) {
      const ready = await fetch(`${api}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const startupMs = performance.now() - s0;
    await new Promise((r) => setTimeout(r, 2_000));
    const rss = () =>
      Number(readFileSync(`/proc/${twoway.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
    const restKiB = rss();
    for (let i = 0; i < live; i++) {
      const response = await fetch(`${api}/v1/runtime/forward`, {
        headers: {
          authorization: `Bearer ${token}`,
          'twoway-tenant': `s${i % tenants}`,
          'twoway-service': `svc${i}`,
          'twoway-forward-url': `https://localhost:${ports.upstream}/hello`,
        },
      });
      if (!response.ok) throw new Error(`forward ${i}: ${response.status} ${await response.text()}`);
      await response.arrayBuffer();
    }
    await new Promise((r) => setTimeout(r, 1_000));
    const livePoolsKiB = rss();
    const poolsMetric = async () =>
      Number(
        /twoway_forward_pools\{state="live"\} (\d+)/.exec(
          await (await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text(),
        )?.[1] ?? NaN,
      );
    const poolsLive = await poolsMetric();
    await new Promise((r) => setTimeout(r, 45_000));
    const afterIdleKiB = rss();
    const poolsAfterIdle = await poolsMetric();
    await stop(twoway.child);
    await stop(upstream);
    return {
      identities,
      tenants,
      importsPerSecond,
      startupMs,
      restRssKiB: restKiB,
      livePools: live,
      poolsReportedLive: poolsLive,
      rssWithLivePoolsKiB: livePoolsKiB,
      kibPerLivePool: (livePoolsKiB - restKiB) / live,
      poolsAfterIdleTtl: poolsAfterIdle,
      rssAfterIdleKiB: afterIdleKiB,
    };
  },

  /**
   * 3 + 4. Edge: full mTLS handshakes (a new connection per request) and keep-alive requests through
   * the edge to a plain HTTP upstream, with 10 and 100,000 registered client certificates (RSA-2048
   * and ECDSA P-256 clients, self-signed as tenants make them). nginx (`ssl_verify_client on`) and
   * HAProxy (`verify required`) get a CA file holding that many certificates.
   */
  async edge() {
    const counts = (opts.edgeCounts ?? '10,100000').split(',').map(Number);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    makeCertificates(dir, 0);
    const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    for (const kind of ['rsa', 'ec']) {
      const newKey =
        kind === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
      openssl(
        'req',
        '-x509',
        ...newKey,
        '-sha256',
        '-days',
        '365',
        '-nodes',
        '-keyout',
        `byoc-${kind}.key`,
        '-out',
        `byoc-${kind}.pem`,
        '-subj',
        `/CN=byoc-${kind}-000000`,
        '-addext',
        'extendedKeyUsage=clientAuth',
      );
    }
    const plainPort = 19080;
    const plain = track(
      fork(join(root, 'bench/plain-upstream.mjs'), [String(plainPort)], {
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      }),
    );
    await new Promise((r) => plain.once('message', r));
    const runLoad = (options) =>
      new Promise((resolve, reject) => {
        const child = fork(join(root, 'bench/mtls-load.mjs'), ['run', JSON.stringify(options)], {
          stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
        });
        child.once('message', resolve);
        child.once('exit', (code) => code !== 0 && reject(new Error(`load exited ${code}`)));
      });
    const measureLoad = async (contender, options) => {
      const before = cpuOf(contender.pids);
      const run = await runLoad({ connections: 8, seconds, ...options });
      const cpu = cpuOf(contender.pids) - before;
      return {
        rps: (run.done / run.ms) * 1000,
        requests: run.done,
        p50: run.latenciesMs[0],
        p99: run.latenciesMs[1],
        non2xx: run.failed,
        socketErrors: 0,
        cpuUsPerRequest: run.done > 0 ? (cpu / run.done) * 1e6 : null,
      };
    };
    const out = {};
    for (const count of counts) {
      // CA file for the references: the two real client certificates plus synthetic ones (the same
      // certificate with another subject: a trust store does not check its anchors' signatures).
      const caFile = join(dir, `clients-${count}.pem`);
      writeFileSync(
        caFile,
        syntheticCertificates(
          [readFileSync(join(dir, 'byoc-rsa.pem'), 'utf8'), readFileSync(join(dir, 'byoc-ec.pem'), 'utf8')],
          count,
        ),
      );
      const twoway = await startEdgeTwoway(count, plainPort);
      out[`twoway start-up ms with ${count} registered`] = Math.round(twoway.startupMs);
      // A reference that cannot start with this CA file is a result too (TLS caps the CA-names list).
      const tryStart = async (name, starter) => {
        const t0 = performance.now();
        try {
          return await starter();
        } catch (err) {
          out[`${name} with ${count} registered`] =
            `failed to start within ${Math.round((performance.now() - t0) / 1000)} s: ${err.message}`;
          console.log(`  ${name} did not start with ${count} CA certificates: ${err.message}`);
          return null;
        }
      };
      const nginx = await tryStart('nginx', () => startEdgeNginx(caFile, plainPort));
      const nginxNoTickets =
        nginx &&
        (await tryStart('nginx', () => startEdgeNginx(caFile, plainPort, ports.nginxEdgeNoTickets, false)));
      const haproxy = await tryStart('haproxy', () => startEdgeHaproxy(caFile, plainPort));
      const serverCa = readFileSync(join(dir, 'ca.pem'), 'utf8');
      try {
        for (const kind of ['rsa', 'ec']) {
          const cert = readFileSync(join(dir, `byoc-${kind}.pem`), 'utf8');
          const key = readFileSync(join(dir, `byoc-${kind}.key`), 'utf8');
          const targets = {
            twoway: {
              c: twoway,
              o: {
                port: ports.edge,
                ca: serverCa,
                cert,
                key,
                path: '/api/hello',
                headers: { authorization: `Bearer ${twoway.apiKey}` },
              },
            },
            nginx: { c: nginx, o: { port: ports.nginxEdge, ca: serverCa, cert, key, path: '/api/hello' } },
            haproxy: {
              c: haproxy,
              o: { port: ports.haproxyEdge, ca: serverCa, cert, key, path: '/api/hello' },
            },
            'nginx, tickets off': {
              c: nginxNoTickets,
              o: { port: ports.nginxEdgeNoTickets, ca: serverCa, cert, key, path: '/api/hello' },
            },
          };
          if (!nginx) delete targets.nginx;
          if (!nginxNoTickets) delete targets['nginx, tickets off'];
          if (!haproxy) delete targets.haproxy;
          // The identity headers each contender passes to the platform (names → value bytes).
          out[`identity headers sent upstream (${kind})`] = Object.fromEntries(
            await Promise.all(
              Object.entries(targets).map(async ([name, t]) => [name, await identityHeaders(t.o)]),
            ),
          );
          for (const mode of ['handshakes', 'keepalive']) {
            // Tickets only matter to handshakes.
            const entries = Object.entries(targets).filter(
              ([name]) => mode === 'handshakes' || name !== 'nginx, tickets off',
            );
            for (const [, t] of entries) await measureLoad(t.c, { ...t.o, mode, seconds: 1 });
            console.log(`edge ${mode}, ${kind}, ${count} registered`);
            const runs = {};
            for (const [name, t] of entries) runs[name] = () => measureLoad(t.c, { ...t.o, mode });
            out[`${mode}, ${kind}, ${count} registered`] = withRatios(await alternateAsync(runs));
          }
        }
      } finally {
        for (const c of [twoway, nginx, nginxNoTickets, haproxy]) if (c) await stop(c.child);
      }
    }
    await stop(plain);
    return out;
  },
};

// ---- edge contenders ---------------------------------------------------------------------------

/** `count` PEM certificates: the real ones first, then copies of the first with another subject. */
function syntheticCertificates(real, count) {
  const template = new X509Certificate(real[0]).raw;
  const marker = Buffer.from('000000');
  const out = [...real];
  for (let i = real.length; i < count; i++) {
    const der = Buffer.from(template);
    const digits = Buffer.from(String(i).padStart(6, '0'));
    for (let at = der.indexOf(marker); at >= 0; at = der.indexOf(marker, at + 1)) digits.copy(der, at);
    out.push(
      `-----BEGIN CERTIFICATE-----\n${der
        .toString('base64')
        .match(/.{1,64}/g)
        .join('\n')}\n-----END CERTIFICATE-----\n`,
    );
  }
  return out.join('');
}

/** Twoway with `count` registered client certificates (the two real BYOC ones plus synthetic rows). */
async function startEdgeTwoway(count, plainPort) {
  const data = join(dir, `edge-data-${count}`);
  const apiKey = await prepareEdgeStore(
    root,
    data,
    ['rsa', 'ec'].map((kind) => readFileSync(join(dir, `byoc-${kind}.pem`), 'utf8')),
    count,
  );
  const t0 = performance.now();
  const child = start('node', [join(root, 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: String(ports.twoway),
      TWOWAY_EDGE_PORT: String(ports.edge),
      TWOWAY_DATA_DIR: data,
      TWOWAY_LOG_LEVEL: 'warn',
      TWOWAY_EDGE_UPSTREAM: `http://127.0.0.1:${plainPort}`,
      // The references' RSA-2048 server certificate (the default would be an ECDSA P-256 one from
      // the platform CA): the same server key for every contender.
      TWOWAY_EDGE_CERT_FILE: join(dir, 'server.pem'),
      TWOWAY_EDGE_KEY_FILE: join(dir, 'server.key'),
    },
  });
  await waitForPort(ports.edge, 60_000);
  const startupMs = performance.now() - t0;
  // Let start-up work (the first expiry scan reads every certificate) finish before measuring.
  for (let i = 0; i < 120; i++) {
    const before = cpuOf([child.pid]);
    await new Promise((r) => setTimeout(r, 500));
    if (cpuOf([child.pid]) - before < 0.01) break;
  }
  return { child, pids: [child.pid], apiKey, startupMs };
}

/**
 * nginx as the edge, on `port`. `tickets` false adds `ssl_session_tickets off` (Twoway's default;
 * nginx's default sends two TLS 1.3 tickets per handshake).
 */
async function startEdgeNginx(caFile, plainPort, port = ports.nginxEdge, tickets = true) {
  const n = join(dir, `nginx-edge-${port}`);
  const conf = join(n, 'nginx.conf');
  writeFileSync(
    conf,
    `${nginxPreamble(n)}
  upstream plain { server 127.0.0.1:${plainPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} ssl;
    keepalive_requests 1000000;${tickets ? '' : '\n    ssl_session_tickets off;'}
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${caFile};
    ssl_verify_client on;
    ssl_verify_depth 1;
    location / {
      proxy_pass http://plain;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The verified identity for the platform, as Twoway's edge sends it (same work for everyone).
      proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
      proxy_set_header X-Client-Subject $ssl_client_s_dn;
      proxy_set_header X-Client-Fingerprint $ssl_client_fingerprint;
    }
  }
}
`,
  );
  const child = start('nginx', ['-e', join(n, 'error.log'), '-p', n, '-c', conf]);
  await waitForPort(port, 60_000).catch(async (err) => {
    await stop(child); // still loading its CA file: it must not eat the CPU of the others
    throw err;
  });
  return { child, pids: [child.pid] };
}

async function startEdgeHaproxy(caFile, plainPort) {
  const conf = join(dir, 'haproxy-edge.cfg');
  writeFileSync(
    join(dir, 'server-full.pem'),
    readFileSync(join(dir, 'server.pem'), 'utf8') + readFileSync(join(dir, 'server.key'), 'utf8'),
  );
  writeFileSync(
    conf,
    `${HAPROXY_DEFAULTS}
frontend fe
  bind 127.0.0.1:${ports.haproxyEdge} ssl crt ${dir}/server-full.pem ca-file ${caFile} verify required
  http-request set-header X-Client-Cert %[ssl_c_der,base64]
  http-request set-header X-Client-Subject %[ssl_c_s_dn]
  http-request set-header X-Client-Fingerprint %[ssl_c_sha1,hex]
  default_backend plain
backend plain
  server p 127.0.0.1:${plainPort} pool-max-conn 64
`,
  );
  const child = start('haproxy', ['-f', conf, '-db']);
  await waitForPort(ports.haproxyEdge, 60_000).catch(async (err) => {
    await stop(child);
    throw err;
  });
  return { child, pids: [child.pid] };
}

/** GET `/api/headers` over mTLS with the load options `o`; the plain upstream's answer, parsed. */
function identityHeaders(o) {
  return new Promise((resolve, reject) => {
    const req = httpsGet(
      {
        host: '127.0.0.1',
        port: o.port,
        path: '/api/headers',
        servername: 'localhost',
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        headers: o.headers ?? {},
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(JSON.parse(text)));
      },
    );
    req.on('error', reject);
  });
}

/** {@link alternate} for asynchronous runs. */
async function alternateAsync(runs) {
  const names = Object.keys(runs);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of names.map((_, i) => names[(i + r) % names.length])) {
      const sample = await runs[name]();
      samples[name].push(sample);
      console.log(
        `  round ${r + 1} ${name}: ${Math.round(sample.rps)} /s, ${sample.cpuUsPerRequest?.toFixed(1)} µs CPU each, p99 ${sample.p99?.toFixed(2)} ms, failed ${sample.non2xx}`,
      );
    }
  }
  return summarise(samples);
}

// ---- report -----------------------------------------------------------------------------------

/** A markdown table of one summary; ratios are to `reference` (see withRatios). */
function table(summary, reference = 'nginx') {
  const rows = [
    `| contender | req/s | × ${reference} | CPU µs/req | × ${reference} | p50 ms | p99 ms | failures |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [name, v] of Object.entries(summary)) {
    if (typeof v !== 'object' || v === null || !('rps' in v)) continue;
    const f = (x, d = 0) => (x === null || x === undefined ? '–' : x.toFixed(d));
    rows.push(
      `| ${name} | ${f(v.rps)} | ${f(v.rpsRatio, 2)} | ${f(v.cpuUsPerRequest, 1)} | ${f(v.cpuRatio, 2)} | ${f(v.p50Ms, 2)} | ${f(v.p99Ms, 2)} | ${v.failures} |`,
    );
  }
  return rows.join('\n');
}

function markdown() {
  const m = results.machine;
  const lines = [
    `Run on ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB; Node ${m.node}, ${m.nginx}, ${m.haproxy.split(' - ')[0]}, ${m.openssl}, ${m.wrk.split(' ')[0] ?? 'wrk'} (1 thread, ${connections} connections); every proxy with one worker; each scenario gives its own date and rounds.`,
    '',
  ];
  for (const [name, data] of Object.entries(results.scenarios)) {
    lines.push(`### ${name}`, '');
    if (data.runAt) {
      const how = data.rounds ? `; medians of ${data.rounds} alternating rounds of ${data.seconds} s` : '';
      lines.push(`(run ${data.runAt.slice(0, 16).replace('T', ' ')} UTC${how})`, '');
    }
    const isSummary = (v) => typeof v === 'object' && v !== null && 'rps' in v;
    const groups = Object.entries(data).filter(
      ([, v]) => typeof v === 'object' && v !== null && !isSummary(v) && Object.values(v).every(isSummary),
    );
    // Other objects (certificate checks, identity headers per contender) are listed as facts.
    const other = Object.entries(data).filter(
      ([, v]) => typeof v === 'object' && v !== null && !isSummary(v) && !Object.values(v).every(isSummary),
    );
    const flat = Object.fromEntries(
      Object.entries(data).filter(([, v]) => typeof v === 'object' && v !== null && 'rps' in v),
    );
    for (const [label, summary] of groups) lines.push(`${label}:`, '', table(summary, data.reference), '');
    if (Object.keys(flat).length > 0) lines.push(table(flat, data.reference), '');
    const facts = Object.entries(data).filter(
      ([k, v]) => typeof v !== 'object' && !['runAt', 'rounds', 'seconds', 'reference'].includes(k),
    );
    const show = (v) =>
      typeof v === 'object' && v !== null
        ? `{${Object.entries(v)
            .map(([k, x]) => `${k}: ${show(x)}`)
            .join(', ')}}`
        : String(v);
    for (const [k, v] of other) facts.push([k, show(v)]);
    if (facts.length > 0)
      lines.push(
        facts.map(([k, v]) => `- ${k}: ${typeof v === 'number' ? Math.round(v * 10) / 10 : v}`).join('\n'),
        '',
      );
  }
  return lines.join('\n');
}

/** Writes bench/results/<date>.json and the generated block of docs/benchmarks.md (after each scenario). */
function writeResults() {
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  const file = join(root, 'bench/results', `${results.date.slice(0, 10)}.json`);
  // Scenarios run earlier the same day (another invocation) stay in the file and the tables.
  if (existsSync(file)) {
    const earlier = JSON.parse(readFileSync(file, 'utf8'));
    results.scenarios = { ...earlier.scenarios, ...results.scenarios };
  }
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  writeDocs();
  console.log(`wrote ${file} and docs/benchmarks.md`);
}

/** Replaces the generated block of docs/benchmarks.md with the tables of `results`. */
function writeDocs() {
  const docs = join(root, 'docs/benchmarks.md');
  const current = readFileSync(docs, 'utf8');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const body = `${begin}\n${markdown()}\n${end}`;
  writeFileSync(
    docs,
    current.includes(begin)
      ? current.replace(new RegExp(`${begin}[\\s\\S]*${end}`), body)
      : `${current}\n${body}\n`,
  );
}

if (opts.render) {
  Object.assign(results, JSON.parse(readFileSync(opts.render, 'utf8')));
  writeDocs();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
try {
  for (const name of opts.scenarios.split(',')) {
    if (!scenarios[name]) throw new Error(`unknown scenario ${name}`);
    console.log(`== ${name}`);
    results.scenarios[name] = {
      runAt: new Date().toISOString(),
      rounds,
      seconds,
      ...(await scenarios[name]()),
    };
    writeResults();
  }
  console.log(markdown());
} finally {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
}
