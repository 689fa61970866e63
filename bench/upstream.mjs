// A small HTTPS server that requires and verifies client certificates, for benchmarks.
// Usage: node bench/upstream.mjs <server.pem> <server.key> <clients-ca.pem> <port>
// Paths starting with /large answer 16 KiB; paths ending in /whoami answer the CN of the client
// certificate presented on the connection (the harness checks that each tenant's own certificate
// was used); every other path answers `Hello, world!` (13 bytes).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certFile, keyFile, caFile, port] = process.argv.slice(2);
const small = Buffer.from('Hello, world!');
const large = Buffer.alloc(16 * 1024, 'x');
const server = createServer(
  {
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ca: readFileSync(caFile),
    requestCert: true,
    rejectUnauthorized: true,
    keepAliveTimeout: 60_000,
  },
  (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.endsWith('/whoami')) {
        res.end(String(req.socket.getPeerCertificate().subject?.CN ?? 'none'));
        return;
      }
      const body = req.url?.startsWith('/large') ? large : small;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
      res.end(body);
    });
  },
);
server.listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
