import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { fingerprintSha256 } from '../../src/certificates/index.js';
import type { CertKey, TestPki } from '../fixtures/pki.js';

/** What the echo server reports about each request. */
export interface Echo {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
  bodySha256: string;
  clientSubject: string;
  /** SHA-256 of the presented client certificate, lowercase hex without colons. */
  clientFingerprint: string;
}

/**
 * Reads a request's body (counted and hashed, not kept) and resolves its {@link Echo}: method,
 * path, headers and the client certificate presented on the connection (empty when none). Rejects
 * when the client aborts the request; callers then drop the connection.
 */
export function readEcho(req: IncomingMessage): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      resolve({
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
        clientSubject: `CN=${peer?.subject?.CN ?? ''}`,
        clientFingerprint: peer?.raw ? fingerprintSha256(peer) : '',
      });
    });
  });
}

export interface MtlsServer {
  server: Server;
  url: string;
  port: number;
  serverCert: CertKey;
  /** Count of completed TLS handshakes. */
  handshakes(): number;
  close(): Promise<void>;
}

/**
 * A Node HTTPS server on 127.0.0.1 that requires and verifies a client certificate
 * (`requestCert: true, rejectUnauthorized: true`, trusting `clientCa`) and answers JSON ({@link Echo})
 * with the presented certificate's subject and fingerprint. `delayMs` delays the answer.
 */
export async function startMtlsServer(
  pki: TestPki,
  clientCa: string[] = [pki.root.certPem],
  options: { delayMs?: number } = {},
): Promise<MtlsServer> {
  const serverCert = await pki.leaf({
    cn: 'localhost',
    eku: 'serverAuth',
    dns: ['localhost'],
    ips: ['127.0.0.1', '::1'],
  });
  let handshakes = 0;
  const server = createServer(
    {
      key: serverCert.keyPem,
      cert: serverCert.certPem + pki.intermediate.certPem,
      ca: clientCa,
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      readEcho(req).then(
        (echo) => {
          const send = () => {
            res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'node' });
            res.end(JSON.stringify(echo));
          };
          if (options.delayMs) setTimeout(send, options.delayMs);
          else send();
        },
        () => res.destroy(),
      );
    },
  );
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `https://127.0.0.1:${port}`,
    serverCert,
    handshakes: () => handshakes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
