/**
 * A remote API as a connection meets it: HTTPS on 127.0.0.1 (certificate from test/fixtures/pki.ts)
 * that demands one kind of credential (none, HTTP Basic, one header) and, when asked, a verified client
 * certificate (`requestCert: true, rejectUnauthorized: true`: a client without one never gets to
 * send a request). Accepted requests are answered 200 with an {@link Echo}; a missing or wrong
 * credential gets 401 with `WWW-Authenticate`. Every request and TLS connection is counted, so a
 * test can tell that nothing was sent.
 */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TestPki } from '../fixtures/pki.js';
import { type Echo, readEcho } from './mtls-server.js';

/** The credential the API demands. */
export type RequiredAuth =
  | { type: 'none' }
  | { type: 'basic'; username: string; password: string }
  | { type: 'header'; name: string; value: string };

export interface ApiServerOptions {
  auth?: RequiredAuth;
  /** Demand a client certificate issued under `clientCa` (default the test root). */
  clientCertificate?: boolean;
  clientCa?: string[];
}

export interface ApiServer {
  url: string;
  /** Every request that reached the handler (accepted or 401), in order. */
  requests: Echo[];
  /** TLS connections that completed a handshake. */
  connections(): number;
  close(): Promise<void>;
}

function authorised(auth: RequiredAuth, headers: Echo['headers']): boolean {
  switch (auth.type) {
    case 'none':
      return true;
    case 'basic': {
      const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
      return headers.authorization === expected;
    }
    case 'header':
      return headers[auth.name.toLowerCase()] === auth.value;
  }
}

/** Starts the API; see the module comment. */
export async function startApiServer(pki: TestPki, options: ApiServerOptions = {}): Promise<ApiServer> {
  const auth = options.auth ?? { type: 'none' };
  const cert = await pki.leaf({ cn: 'localhost', eku: 'serverAuth', dns: ['localhost'], ips: ['127.0.0.1'] });
  const requests: Echo[] = [];
  let connections = 0;
  const server: Server = createServer(
    {
      key: cert.keyPem,
      cert: cert.certPem + pki.intermediate.certPem,
      ...(options.clientCertificate
        ? { ca: options.clientCa ?? [pki.root.certPem], requestCert: true, rejectUnauthorized: true }
        : {}),
    },
    (req, res) => {
      readEcho(req).then(
        (echo) => {
          requests.push(echo);
          if (!authorised(auth, req.headers)) {
            res.writeHead(401, {
              'content-type': 'application/json',
              'www-authenticate': auth.type === 'basic' ? 'Basic realm="api"' : 'ApiKey',
            });
            res.end(JSON.stringify({ error: 'unauthorised' }));
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'api' });
          res.end(JSON.stringify(echo));
        },
        () => res.destroy(),
      );
    },
  );
  server.on('secureConnection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
