/**
 * A real OAuth 2.0 authorization server token endpoint and a resource server, both HTTPS on 127.0.0.1
 * with certificates from test/fixtures/pki.ts.
 *
 * The token endpoint (client-credentials grant only, RFC 6749 §4.4) listens twice, as RFC 8705 §5
 * describes (`mtls_endpoint_aliases`): `url` does not ask for a client certificate; `mtlsUrl` requires
 * and verifies one (`requestCert: true, rejectUnauthorized: true`). Both enforce each registered
 * client's authentication method: `client_secret_basic` (RFC 6749 §2.3.1, form-urlencoded id and secret
 * inside Basic, nothing in the body), `client_secret_post` (both in the body, no Authorization header),
 * `tls_client_auth` (RFC 8705 §2.1: only `client_id` in the body, a verified client certificate whose
 * SHA-256 fingerprint and subject match the registration). A token issued over the mTLS listener is
 * certificate-bound: the server records `cnf: { "x5t#S256": ... }` (RFC 8705 §3.1), which the
 * resource server checks against the certificate presented with it.
 *
 * Tokens are opaque random strings kept in a map the resource server reads (as token introspection,
 * RFC 7662, would return them).
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { CertKey, TestPki } from '../fixtures/pki.js';

/** A client registered at the authorization server. */
export interface RegisteredClient {
  clientId: string;
  method: 'client_secret_basic' | 'client_secret_post' | 'tls_client_auth';
  clientSecret?: string;
  /** tls_client_auth: the certificate the client must present (RFC 8705 §2.1). */
  certificate?: CertKey;
}

/** A token the endpoint issued. */
export interface IssuedToken {
  clientId: string;
  scope: string | undefined;
  audience: string | undefined;
  /** RFC 8705 §3.1 confirmation: base64url SHA-256 of the DER client certificate the token is bound to. */
  cnf: { 'x5t#S256': string } | undefined;
  revoked: boolean;
}

/** One token request as received. */
export interface ReceivedTokenRequest {
  listener: 'tls' | 'mtls';
  authorization: string | undefined;
  form: Record<string, string>;
  /** SHA-256 fingerprint (lowercase hex) of the presented client certificate, when one was. */
  clientFingerprint: string | undefined;
}

/** A canned answer replacing the normal token response (for garbage, oversized, non-Bearer tests). */
export interface RawAnswer {
  status: number;
  body: string | Buffer;
  contentType?: string;
  /** Send the body chunked, without Content-Length. */
  chunked?: boolean;
}

export interface OAuthServer {
  /** Token endpoint URL on the listener that asks for no client certificate. */
  url: string;
  /** Token endpoint URL on the listener that requires a client certificate (RFC 8705 §5 alias). */
  mtlsUrl: string;
  /** PEM the clients trust to verify both listeners (the test root). */
  trustAnchorsPem: string;
  /** Every token request received, in order. */
  requests: ReceivedTokenRequest[];
  /** Tokens issued, by access token. */
  issued: Map<string, IssuedToken>;
  /** `expires_in` of the next tokens, in seconds; undefined leaves the field out. Default 3600. */
  expiresInS: number | undefined;
  /** When set, every token request is refused with this RFC 6749 §5.2 error body (status 400, or 401 for invalid_client). */
  failWith: { error: string; error_description?: string } | null;
  /** When set, every token request gets this answer instead. */
  answer: RawAnswer | null;
  /** When true, token requests are read and never answered (timeout tests). */
  stall: boolean;
  close(): Promise<void>;
}

/** base64url SHA-256 of a certificate's DER: the RFC 8705 §3.1 `x5t#S256` thumbprint. */
export function x5tS256(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64url');
}

async function serverCertificate(pki: TestPki): Promise<string[]> {
  const cert = await pki.leaf({ cn: 'localhost', eku: 'serverAuth', dns: ['localhost'], ips: ['127.0.0.1'] });
  return [cert.keyPem, cert.certPem + pki.intermediate.certPem];
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** The presented client certificate, when the handshake verified one. */
function peerCertificate(req: IncomingMessage): X509Certificate | undefined {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return undefined;
  const raw = socket.getPeerCertificate().raw;
  return raw === undefined ? undefined : new X509Certificate(raw);
}

/** RFC 6749 §2.3.1: Basic credentials are the form-urlencoded id and secret. */
function basicCredentials(header: string | undefined): { id: string; secret: string } | undefined {
  if (header === undefined || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const decode = (s: string): string => decodeURIComponent(s.replaceAll('+', ' '));
  return { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
}

/** Which registered client this request authenticates as, or undefined (RFC 6749 §2.3, RFC 8705 §2.1). */
function authenticate(
  clients: RegisteredClient[],
  received: ReceivedTokenRequest,
  peer: X509Certificate | undefined,
): RegisteredClient | undefined {
  const basic = basicCredentials(received.authorization);
  const { form } = received;
  const clientId = basic?.id ?? form.client_id;
  const client = clients.find((c) => c.clientId === clientId);
  if (client === undefined) return undefined;
  switch (client.method) {
    case 'client_secret_basic':
      // Exactly one method per request (RFC 6749 §2.3): no credentials in the body as well.
      return basic !== undefined && basic.secret === client.clientSecret && form.client_secret === undefined
        ? client
        : undefined;
    case 'client_secret_post':
      return received.authorization === undefined && form.client_secret === client.clientSecret
        ? client
        : undefined;
    case 'tls_client_auth': {
      const expected = client.certificate;
      const matches =
        peer !== undefined &&
        expected !== undefined &&
        peer.fingerprint256.replaceAll(':', '').toLowerCase() === expected.fingerprintSha256 &&
        peer.subject === expected.subject;
      return matches && received.authorization === undefined && form.client_secret === undefined
        ? client
        : undefined;
    }
  }
}

/**
 * Starts the token endpoint for `clients`; `clientCa` verifies client certificates on the mTLS listener
 * (default the test root).
 */
export async function startOAuthServer(
  pki: TestPki,
  clients: RegisteredClient[],
  clientCa: string[] = [pki.root.certPem],
): Promise<OAuthServer> {
  const [key, cert] = await serverCertificate(pki);
  const state: OAuthServer = {
    url: '',
    mtlsUrl: '',
    trustAnchorsPem: pki.root.certPem,
    requests: [],
    issued: new Map(),
    expiresInS: 3600,
    failWith: null,
    answer: null,
    stall: false,
    close: async () => undefined,
  };
  const handler = (listener: 'tls' | 'mtls') => async (req: IncomingMessage, res: ServerResponse) => {
    const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
    const peer = peerCertificate(req);
    const received: ReceivedTokenRequest = {
      listener,
      authorization: req.headers.authorization,
      form,
      clientFingerprint: peer?.fingerprint256.replaceAll(':', '').toLowerCase(),
    };
    state.requests.push(received);
    if (state.stall) return;
    if (state.answer !== null) {
      res.writeHead(state.answer.status, { 'content-type': state.answer.contentType ?? 'application/json' });
      if (state.answer.chunked) res.write(state.answer.body);
      res.end(state.answer.chunked ? undefined : state.answer.body);
      return;
    }
    if (state.failWith !== null) {
      json(res, state.failWith.error === 'invalid_client' ? 401 : 400, state.failWith);
      return;
    }
    if (req.method !== 'POST' || req.url !== '/token') {
      json(res, 404, { error: 'invalid_request', error_description: 'POST /token only' });
      return;
    }
    if (form.grant_type !== 'client_credentials') {
      json(res, 400, { error: 'unsupported_grant_type' });
      return;
    }
    const client = authenticate(clients, received, peer);
    if (client === undefined) {
      json(
        res,
        401,
        { error: 'invalid_client', error_description: 'Client authentication failed.' },
        {
          'www-authenticate': 'Basic realm="token"',
        },
      );
      return;
    }
    const accessToken = randomBytes(24).toString('base64url');
    state.issued.set(accessToken, {
      clientId: client.clientId,
      scope: form.scope,
      audience: form.audience,
      // RFC 8705 §3: bind every token issued over mutual TLS to the certificate it was issued over.
      cnf: peer === undefined ? undefined : { 'x5t#S256': x5tS256(peer.raw) },
      revoked: false,
    });
    json(res, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      ...(state.expiresInS === undefined ? {} : { expires_in: state.expiresInS }),
      ...(form.scope === undefined ? {} : { scope: form.scope }),
    });
  };
  const plain = createServer({ key, cert }, handler('tls'));
  const mtls = createServer(
    { key, cert, ca: clientCa, requestCert: true, rejectUnauthorized: true },
    handler('mtls'),
  );
  state.url = `${await listen(plain)}/token`;
  state.mtlsUrl = `${await listen(mtls)}/token`;
  state.close = async () => {
    await Promise.all([closeServer(plain), closeServer(mtls)]);
  };
  return state;
}

/** What the resource server answers a request it accepts. */
export interface ResourceAnswer {
  clientId: string;
  bound: boolean;
}

export interface ResourceServer {
  url: string;
  /** Requests answered 200 and 401. */
  accepted(): number;
  refused(): number;
  close(): Promise<void>;
}

/**
 * A protected resource (RFC 6750) over HTTPS that requires a verified client certificate (unless
 * `options.clientCertificate` is false: then it asks for none, and only unbound tokens pass). It accepts
 * `Authorization: Bearer <token>` for a token `oauth` issued and has not revoked; for a bound token
 * the presented certificate's x5t#S256 must equal the token's `cnf` (RFC 8705 §3.2). Otherwise it
 * answers 401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1).
 */
export async function startResourceServer(
  pki: TestPki,
  oauth: OAuthServer,
  clientCa: string[] = [pki.root.certPem],
  options: { clientCertificate?: boolean } = {},
): Promise<ResourceServer> {
  const [key, cert] = await serverCertificate(pki);
  let accepted = 0;
  let refused = 0;
  const mtls = options.clientCertificate ?? true;
  const server = createServer(
    { key, cert, ...(mtls ? { ca: clientCa, requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/.exec(req.headers.authorization ?? '');
      const token = match?.[1] === undefined ? undefined : oauth.issued.get(match[1]);
      const peer = peerCertificate(req);
      const bindingHolds =
        token?.cnf === undefined || (peer !== undefined && x5tS256(peer.raw) === token.cnf['x5t#S256']);
      if (token === undefined || token.revoked || !bindingHolds) {
        refused += 1;
        json(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });
        return;
      }
      accepted += 1;
      json(res, 200, { clientId: token.clientId, bound: token.cnf !== undefined } satisfies ResourceAnswer);
    },
  );
  const url = await listen(server);
  return { url, accepted: () => accepted, refused: () => refused, close: () => closeServer(server) };
}
