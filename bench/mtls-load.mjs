// A load client for mTLS servers (wrk has no client certificates): `connections` sockets each send
// `GET path` with the given headers, one request at a time, for `seconds`. Mode `handshakes` opens a
// new TLS connection (full handshake, no resumption) per request; `keepalive` reuses one per worker.
// `plain: true` speaks HTTP without TLS. Run as a child process (fork) so its CPU is not the server's: it answers with one IPC message
// { done, failed, ms, latenciesMs: [p50, p99] }. The TLS context is built once.
import net from 'node:net';
import tls from 'node:tls';

export async function load({
  mode,
  seconds,
  connections,
  port,
  ca,
  cert,
  key,
  path,
  headers = {},
  plain = false,
}) {
  const secureContext = plain ? null : tls.createSecureContext({ ca, cert, key });
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const request = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\n${head}${mode === 'handshakes' ? 'Connection: close\r\n' : ''}\r\n`,
  );
  const deadline = Date.now() + seconds * 1000;
  const latencies = [];
  let done = 0;
  let failed = 0;
  const connect = () =>
    new Promise((resolve, reject) => {
      // `plain`: HTTP without TLS (to time a plain-HTTP hop with the same client).
      if (plain) {
        const socket = net.connect({ host: '127.0.0.1', port });
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
        return;
      }
      // session: undefined and a fresh connection each time: no TLS resumption.
      const socket = tls.connect({ host: '127.0.0.1', port, secureContext, servername: 'localhost' });
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
    });
  const exchange = (socket) =>
    new Promise((resolve) => {
      let buffer = '';
      const finish = (ok) => {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(ok);
      };
      const onClose = () => finish(false);
      const onData = (chunk) => {
        buffer += chunk;
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length:\s*(\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
        if (buffer.length >= end + 4 + length) finish(buffer.startsWith('HTTP/1.1 200'));
      };
      socket.setEncoding('latin1');
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(request);
    });
  const timed = async (work) => {
    const t = performance.now();
    const ok = await work();
    if (latencies.length < 200_000) latencies.push(performance.now() - t);
    ok ? done++ : failed++;
  };
  const worker = async () => {
    if (mode === 'handshakes') {
      while (Date.now() < deadline) {
        await timed(async () => {
          try {
            const socket = await connect();
            const ok = await exchange(socket);
            socket.destroy();
            return ok;
          } catch {
            return false;
          }
        });
      }
      return;
    }
    let socket;
    try {
      socket = await connect();
    } catch {
      failed++;
      return;
    }
    while (Date.now() < deadline && !socket.destroyed) await timed(() => exchange(socket));
    socket.destroy();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, worker));
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? null;
  return { done, failed, ms: performance.now() - started, latenciesMs: [at(0.5), at(0.99)] };
}

if (process.argv[2] === 'run') {
  const result = await load(JSON.parse(process.argv[3]));
  process.send(result);
  process.exit(0);
}
