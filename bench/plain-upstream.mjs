// A plain HTTP upstream for the edge benchmarks: answers `Hello, world!` (13 bytes) to everything.
// Usage: node bench/plain-upstream.mjs <port>
import { createServer } from 'node:http';

const body = Buffer.from('Hello, world!');
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2]), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
