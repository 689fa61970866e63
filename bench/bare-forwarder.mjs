// The floor: a bare Node forwarder (node:http server + https.Agent with the client certificate),
// no features. Usage: node bench/bare-forwarder.mjs <port> <upstreamPort> <client.pem> <client.key> <ca.pem>
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Agent, request } from 'node:https';

const [port, upstreamPort, certFile, keyFile, caFile] = process.argv.slice(2);
const agent = new Agent({
  keepAlive: true,
  maxSockets: 256,
  cert: readFileSync(certFile),
  key: readFileSync(keyFile),
  ca: readFileSync(caFile),
});
createServer((req, res) => {
  const upstream = request(
    {
      host: '127.0.0.1',
      port: Number(upstreamPort),
      path: req.url,
      method: req.method,
      headers: { host: `127.0.0.1:${upstreamPort}` },
      agent,
    },
    (answer) => {
      // Connection is hop-by-hop: an upstream's `Connection: close` must not close the client's.
      const { connection, ...headers } = answer.headers;
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
