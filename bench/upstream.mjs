// A small HTTPS server that requires and verifies client certificates, for benchmarks.
// Usage: node bench/upstream.mjs <server.pem> <server.key> <clients-ca.pem> <port>
// Paths starting with /large answer 16 KiB; paths ending in /whoami answer the CN of the client
// certificate presented on the connection (the harness checks that each tenant's own certificate
// was used); paths ending in /close answer with `Connection: close`, so every request needs a new
// TLS connection; `/oauth/token` answers an OAuth 2.0 token response (RFC 6749 §5.1; the connection
// benchmark's token endpoint, reached over the same mTLS); every other path answers `Hello, world!`
// (13 bytes).
// IPC: the message 'handshakes' is answered with `{ full, resumed }`, the TLS handshakes so far.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certFile, keyFile, caFile, port] = process.argv.slice(2);
const small = Buffer.from('Hello, world!');
const large = Buffer.alloc(16 * 1024, 'x');
const token = Buffer.from(
  JSON.stringify({ access_token: 'bench-token', token_type: 'Bearer', expires_in: 3600 }),
);
const handshakes = { full: 0, resumed: 0 };
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
      if (req.url === '/oauth/token') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': token.length });
        res.end(token);
        return;
      }
      if (req.url?.endsWith('/whoami')) {
        res.end(String(req.socket.getPeerCertificate().subject?.CN ?? 'none'));
        return;
      }
      const body = req.url?.startsWith('/large') ? large : small;
      const headers = { 'content-type': 'text/plain', 'content-length': body.length };
      if (req.url?.endsWith('/close')) headers.connection = 'close';
      res.writeHead(200, headers);
      res.end(body);
    });
  },
);
server.on('secureConnection', (socket) => {
  if (socket.isSessionReused()) handshakes.resumed += 1;
  else handshakes.full += 1;
});
process.on('message', (message) => {
  if (message === 'handshakes') process.send?.({ handshakes });
});
server.listen(Number(port), '127.0.0.1', () => process.send?.('ready'));
process.on('SIGTERM', () => process.exit(0));
