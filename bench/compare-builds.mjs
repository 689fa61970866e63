// A/B of the mapping forward of two Twoway builds: both run side by side (one worker each) in front of
// one upstream, measured alternately with wrk, so a change can be checked for a slowdown of the
// forward in one run rather than across runs on a host whose speed moves by 30-50%.
// Usage: node bench/compare-builds.mjs <checkout A> <checkout B> [rounds=20] [seconds=3]
// Each checkout must be built (`npm run build`); e.g. A: `git archive <base> | tar -x -C /tmp/base`.
// Prints each round and, at the end, medians of CPU µs per request and of the per-round ratios B/A.
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  addForwardTenant,
  cpuOf,
  makeCertificates,
  median,
  start,
  stop,
  track,
  waitForPort,
  wrk,
} from './lib.mjs';

const [a, b, roundsArg = '20', secondsArg = '3'] = process.argv.slice(2);
if (!a || !b)
  throw new Error('usage: node bench/compare-builds.mjs <checkout A> <checkout B> [rounds] [seconds]');
const rounds = Number(roundsArg);
const seconds = Number(secondsArg);
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'twoway-compare-'));
const ports = { upstream: 19643, a: 18580, b: 18581 };
const token = 'bench-operator-token-0123456789';

/** A Twoway of `checkout` on `port` with tenant `bench` mapped to the upstream; `run(s)` measures it. */
async function contender(name, checkout, port) {
  const child = start('node', [join(resolve(checkout), 'dist/cli/index.js'), 'serve'], {
    env: {
      ...process.env,
      TWOWAY_HTTP_PORT: String(port),
      TWOWAY_DATA_DIR: join(dir, `data-${name}`),
      TWOWAY_OPERATOR_TOKEN: token,
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_LOG_LEVEL: 'warn',
      TWOWAY_EDGE_PORT: '0',
    },
  });
  await waitForPort(port, 30_000);
  const api = `http://127.0.0.1:${port}`;
  const apiKey = await addForwardTenant(api, token, {
    id: 'bench',
    p12File: join(dir, 'client0.p12'),
    upstreamUrl: `https://localhost:${ports.upstream}/`,
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
  });
  const headers = {
    authorization: `Bearer ${apiKey}`,
    'twoway-service': 'api',
    'twoway-forward-url': `https://localhost:${ports.upstream}/hello`,
  };
  return {
    name,
    child,
    run(s) {
      const before = cpuOf([child.pid]);
      const result = wrk(`${api}/v1/runtime/forward`, { seconds: s, connections: 16, headers });
      const cpu = ((cpuOf([child.pid]) - before) / result.requests) * 1e6;
      return { rps: result.rps, cpu, failures: result.non2xx + result.socketErrors };
    },
  };
}

makeCertificates(dir, 1);
const upstream = track(
  fork(
    join(here, 'upstream.mjs'),
    [join(dir, 'server.pem'), join(dir, 'server.key'), join(dir, 'ca.pem'), String(ports.upstream)],
    { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
  ),
);
await new Promise((ready) => upstream.once('message', ready));
const both = [await contender('A', a, ports.a), await contender('B', b, ports.b)];
const samples = { A: [], B: [] };
try {
  for (const c of both) c.run(2); // warm-up: pools, TLS sessions, JIT
  for (let r = 0; r < rounds; r++) {
    for (const c of r % 2 ? [...both].reverse() : both) {
      const sample = c.run(seconds);
      samples[c.name].push(sample);
      console.log(
        `round ${r + 1} ${c.name}: ${Math.round(sample.rps)} req/s, ${sample.cpu.toFixed(1)} µs CPU/req, failures ${sample.failures}`,
      );
    }
  }
  const cpu = (name) => median(samples[name].map((s) => s.cpu));
  const paired = samples.A.map((s, i) => samples.B[i].cpu / s.cpu);
  console.log(
    JSON.stringify({
      cpuUsPerRequest: { A: cpu('A'), B: cpu('B') },
      cpuRatio: cpu('B') / cpu('A'),
      medianPairedCpuRatio: median(paired),
      failures: [...samples.A, ...samples.B].reduce((n, s) => n + s.failures, 0),
    }),
  );
} finally {
  for (const c of both) await stop(c.child);
  upstream.kill();
  rmSync(dir, { recursive: true, force: true });
}
