// A plain HTTP upstream for the edge benchmarks: answers `Hello, world!` (13 bytes) to everything,
// except paths ending in /headers, which answer the names and byte sizes of the identity headers
// the edge sent (the harness checks that every contender does the same work).
// Usage: node bench/plain-upstream.mjs <port>
import { createServer } from 'node:http';

const body = Buffer.from('Hello, world!');
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url?.endsWith('/headers')) {
      const identity = Object.entries(req.headers).filter(([name]) =>
        /^(x-client-|x-forwarded-client-cert|client-cert|twoway-tenant)/.test(name),
      );
      res.end(JSON.stringify(Object.fromEntries(identity.map(([n, v]) => [n, String(v).length]))));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
