/**
 * The edge listener: inbound mTLS on its own port, in front of the platform's API.
 *
 * TLS: the server asks every client for a certificate (`requestCert`) with an empty list of
 * acceptable CA names (no `ca` option: RFC 8446 §4.3.2 lets the CertificateRequest omit
 * `certificate_authorities`, RFC 5246 §7.4.4 allows an empty list), so any client sends its
 * certificate, self-signed (BYOC) or issued by the platform CA, and the request stays small however
 * many certificates are registered (a CA-names list is capped at 64 KiB: haproxy/haproxy#1011,
 * openssl/openssl#6609). OpenSSL is told not to refuse certificates it cannot chain
 * (`rejectUnauthorized: false`, on this server only; never on a client).
 *
 * Why that is safe: OpenSSL still verifies the client's CertificateVerify, a signature over the
 * handshake transcript with the private key of the presented certificate (RFC 8446 §4.4.3; RFC 5246
 * §7.4.8 for TLS 1.2), and fails the handshake when it does not verify. So a completed handshake
 * proves possession of the key of exactly the certificate we then look at; trust is not decided by
 * OpenSSL's chain building but by our own check right after the handshake: the certificate's SHA-256
 * fingerprint must be registered (admission.ts), which pins that exact certificate. A resumed session
 * carries the certificate of the full handshake it resumes, and is checked the same way.
 *
 * Session tickets are off unless `sessionTickets` is set (SSL_OP_NO_TICKET): Node never rotates the
 * ticket key of a context, so one leaked key would decrypt every session's resumption secret for
 * the life of the process (Mozilla's server configurations turn tickets off for this reason); cluster
 * workers have different keys anyway; and for each stateless ticket (two per handshake by default)
 * OpenSSL 3.0 encodes the session, decodes it again, which parses the client certificate once
 * more, and encodes it again (construct_stateless_ticket): 30% of a full handshake here
 * (docs/benchmarks.md). With SSL_OP_NO_TICKET, TLS 1.3 still sends stateful tickets (session ids)
 * that this server never stores, so every connection does a full handshake.
 *
 * HTTP: a connection whose certificate is refused gets, on its first request, a problem+json answer
 * (`client_certificate_required` 401, `client_certificate_unknown`/`_revoked`/`_expired` 403) with
 * `Connection: close`, and nothing reaches the platform. Every request must carry the API key
 * (`Authorization: Bearer`) of a tenant that registered the certificate, and is checked against that
 * tenant's registration (one Map lookup: revocation refuses the next request of an open keep-alive
 * connection; another tenant's registration of the same certificate does not count). Then
 * `GET /v1/tenants/{tenant}/mtls/hello` answers `Hello, world!`, and every other path is streamed to
 * the platform upstream with the verified identity headers (identity-headers.ts).
 */
import { constants, createHash, type X509Certificate } from 'node:crypto';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { summarize } from '../certificates/index.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { causeMessage, proxyRequest } from '../forward/proxy.js';
import type { Metrics } from '../http/metrics.js';
import { writeRawProblem } from '../http/problem.js';
import type { Clock } from '../shared/clock.js';
import { LogLimiter } from '../shared/logger.js';
import { pathWithin } from '../shared/paths.js';
import { bearerToken, type Principal } from '../tenants/service.js';
import { refusalFor } from './admission.js';
import type { ClientCertificateIndex, EdgeEntry } from './certificate-index.js';
import { IDENTITY_HEADER_NAMES, identityHeaders } from './identity-headers.js';

/** The platform API the edge proxies to, and the pool it uses. */
export interface EdgeUpstream {
  /** Origin (`http://platform:8080`) plus an optional base path prepended to every request path. */
  url: URL;
  dispatcher: Dispatcher;
}

export interface EdgeOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** PEM server certificate followed by its chain, and its private key. */
  certificatePem: string;
  keyPem: string;
  index: ClientCertificateIndex;
  /** Bearer token → principal (TenantService.authenticate); throws AppError `unauthorized`. */
  authenticate(token: string | undefined): Promise<Principal>;
  /**
   * The certificates that validate `cert` for `Client-Cert-Chain` (DER, issuing CA first, trust
   * anchor left out): the platform issuing CA for a certificate it issued, none for BYOC.
   */
  chainOf(cert: X509Certificate): Promise<Buffer[]>;
  /** A certificate the index does not know: platform-issued and just registered elsewhere? */
  lookupUnindexed(cert: X509Certificate, fingerprintSha256: string): Promise<EdgeEntry | undefined>;
  upstream?: EdgeUpstream;
  /**
   * Issue TLS session tickets (resumption). Off: SSL_OP_NO_TICKET, see the module comment on
   * session tickets.
   */
  sessionTickets: boolean;
  /** `twoway_edge_requests_total{outcome}` and `twoway_edge_handshakes_total{certificate}`. */
  metrics: Pick<Metrics, 'edgeRequests' | 'edgeHandshakes'>;
  clock: Clock;
  logger: Logger;
}

/** A running edge listener. */
export interface EdgeListener {
  /** `https://<host>:<port>`. */
  url: string;
  port: number;
  server: https.Server;
  /** Replaces the server certificate for new handshakes (renewal). */
  setCertificate(certificatePem: string, keyPem: string): void;
  close(): Promise<void>;
}

/** What the edge knows about one TLS connection, decided right after its handshake. */
interface ConnectionState {
  /** SHA-256 of the DER client certificate; null when the client sent none. */
  fingerprint: string | null;
  peer: X509Certificate | null;
  der: Buffer | null;
  /** The lookup of a certificate missing from the index, while it runs. */
  pending: Promise<unknown> | null;
  /** Identity headers, made on the first proxied request, for `headersTenant`. */
  headers: string[] | null;
  headersTenant: string | null;
}

const kState = Symbol('twoway.edge.connection');
type TaggedSocket = TLSSocket & { [kState]?: ConnectionState };

const HELLO_PATH = /^\/v1\/tenants\/([^/?]+)\/mtls\/hello$/;
const HELLO_BODY = Buffer.from('Hello, world!', 'utf8');

/** Answers with an RFC 9457 problem and `Twoway-Error`; `close` ends the connection after it. */
function sendProblem(res: http.ServerResponse, err: AppError, close: boolean): void {
  writeRawProblem(res, err, {
    close,
    ...(err.code === 'method_not_allowed' ? { headers: { allow: 'GET, HEAD' } } : {}),
  });
}

/**
 * Starts the edge listener on `options.host:options.port` (see the module comment).
 * @throws the listen error (EADDRINUSE, EACCES).
 */
export async function startEdge(options: EdgeOptions): Promise<EdgeListener> {
  const { index, clock, logger, metrics } = options;
  const log = logger.child({ module: 'edge' });
  // The common label values' children, bound once (prom-client hashes labels on every call).
  const served = metrics.edgeRequests.labels({ outcome: 'ok' });
  const withCertificate = metrics.edgeHandshakes.labels({ certificate: 'yes' });
  const withoutCertificate = metrics.edgeHandshakes.labels({ certificate: 'no' });
  /** Answers a refusal or gateway error and counts it by code. */
  const answer = (res: http.ServerResponse, err: AppError, close: boolean): void => {
    metrics.edgeRequests.inc({ outcome: err.code });
    sendProblem(res, err, close);
  };
  const upstreamBase = options.upstream
    ? {
        origin: options.upstream.url.origin,
        path: options.upstream.url.pathname.replace(/\/$/, ''),
        dispatcher: options.upstream.dispatcher,
      }
    : undefined;

  const admit = (socket: TaggedSocket): void => {
    const peer = socket.getPeerX509Certificate() ?? null;
    const state: ConnectionState = {
      fingerprint: null,
      peer,
      der: null,
      pending: null,
      headers: null,
      headersTenant: null,
    };
    socket[kState] = state;
    if (peer === null) {
      withoutCertificate.inc();
      return;
    }
    withCertificate.inc();
    state.der = peer.raw;
    state.fingerprint = createHash('sha256').update(state.der).digest('hex');
    if (index.has(state.fingerprint)) return;
    state.pending = options.lookupUnindexed(peer, state.fingerprint).then(
      () => {
        state.pending = null;
      },
      (err: unknown) => {
        state.pending = null;
        log.warn({ err, fingerprintSha256: state.fingerprint }, 'client certificate lookup failed');
      },
    );
  };

  const refuse = (res: http.ServerResponse, code: AppError['code'], state: ConnectionState): void => {
    if (log.isLevelEnabled('debug')) {
      log.debug({ code, fingerprintSha256: state.fingerprint }, 'edge refused client certificate');
    }
    answer(res, new AppError(code), true);
  };

  /** A platform upstream that does not speak HTTP fails every request: a few log lines a minute. */
  const protocolErrors = new LogLimiter();
  /** Subject, SANs and chain per certificate fingerprint (fixed for a fingerprint), for the identity headers. */
  const namesByFingerprint = new Map<
    string,
    { subject: string; subjectAltNames: string[]; chain: Buffer[] }
  >();
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const state = (req.socket as TaggedSocket)[kState];
    if (state === undefined) {
      answer(res, new AppError('internal_error'), true);
      return;
    }
    if (state.pending !== null) await state.pending;
    if (state.fingerprint === null) {
      refuse(res, 'client_certificate_required', state);
      return;
    }
    if (!index.has(state.fingerprint)) {
      refuse(res, 'client_certificate_unknown', state);
      return;
    }

    let principal: Principal;
    try {
      principal = await options.authenticate(bearerToken(req.headers.authorization));
    } catch (err) {
      answer(res, toAppError(err), !req.complete);
      return;
    }
    // Admitted for the API key's tenant only, by that tenant's own registration: several tenants
    // may register one public certificate (admission.ts).
    const entry = principal.kind === 'tenant' ? index.get(state.fingerprint, principal.tenantId) : undefined;
    if (entry === undefined) {
      answer(res, new AppError('client_certificate_tenant_mismatch'), !req.complete);
      return;
    }
    const refusal = refusalFor(entry, clock.now().getTime());
    if (refusal !== null) {
      refuse(res, refusal, state);
      return;
    }

    const url = req.url ?? '';
    if (!url.startsWith('/')) {
      answer(res, new AppError('bad_request', 'The request target must be a path.'), true);
      return;
    }
    const query = url.indexOf('?');
    const hello = HELLO_PATH.exec(query < 0 ? url : url.slice(0, query));
    if (hello !== null) {
      if (hello[1] !== entry.tenantId) {
        answer(res, new AppError('not_found', 'No such tenant.'), !req.complete);
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        answer(res, new AppError('method_not_allowed'), !req.complete);
      } else {
        req.resume();
        res.writeHead(200, {
          'content-type': 'text/plain; charset=utf-8',
          'content-length': HELLO_BODY.length,
        });
        res.end(req.method === 'HEAD' ? undefined : HELLO_BODY);
        served.inc();
      }
      return;
    }

    if (upstreamBase === undefined) {
      answer(
        res,
        new AppError(
          'edge_upstream_not_configured',
          'This edge serves GET /v1/tenants/{tenant}/mtls/hello only; TWOWAY_EDGE_UPSTREAM is not set.',
        ),
        !req.complete,
      );
      return;
    }
    if (state.headers === null || state.headersTenant !== entry.tenantId) {
      // Parsing the names costs more than the rest of a request: once per certificate, not per
      // connection (clients reconnect with the same certificate all the time).
      let names = namesByFingerprint.get(state.fingerprint);
      if (names === undefined) {
        const peer = state.peer as X509Certificate;
        const summary = summarize(peer);
        names = {
          subject: summary.subject,
          subjectAltNames: summary.subjectAltNames,
          chain: await options.chainOf(peer),
        };
        if (namesByFingerprint.size >= 50_000) namesByFingerprint.clear();
        namesByFingerprint.set(state.fingerprint, names);
      }
      state.headers = identityHeaders({
        tenantId: entry.tenantId,
        fingerprintSha256: state.fingerprint,
        der: state.der as Buffer,
        subject: names.subject,
        subjectAltNames: names.subjectAltNames,
        chain: names.chain,
      });
      state.headersTenant = entry.tenantId;
    }
    // Origin first, then the path as a string: a request target like `//evil.example/x` stays a
    // path on the upstream instead of becoming another host.
    let target: URL;
    try {
      target = new URL(`${upstreamBase.origin}${upstreamBase.path}${url}`);
    } catch {
      answer(res, new AppError('bad_request', 'The request target is not a valid path.'), true);
      return;
    }
    // A path that climbs out of the configured base path, as the URL parser resolves it (`/..`,
    // `/%2e%2e`) or as a lenient platform server would (`/..%2F`, `/..;/`), is refused, not sent
    // elsewhere on the platform.
    if (!pathWithin(upstreamBase.path, target.pathname)) {
      answer(res, new AppError('bad_request', 'The request path leaves the platform base path.'), true);
      return;
    }
    try {
      await proxyRequest(req, res, {
        url: target,
        dispatcher: upstreamBase.dispatcher,
        dropHeaders: IDENTITY_HEADER_NAMES,
        addHeaders: state.headers,
      });
      served.inc();
    } catch (err) {
      const appError = toAppError(err);
      if (appError.code === 'internal_error') log.error({ err }, 'edge proxy failed');
      else if (appError.code === 'upstream_protocol_error') {
        protocolErrors.warn(
          log,
          { upstream: upstreamBase.origin, reason: causeMessage(appError) },
          'platform upstream answered outside HTTP',
        );
      }
      answer(res, appError, !req.complete);
    } finally {
      if (!req.complete) req.resume();
    }
  };

  // Also given to setSecureContext on renewal, which otherwise drops secureOptions.
  const tlsOptions = {
    requestCert: true,
    // The edge server only: see the module comment. The decision is refusalFor() per request.
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    secureOptions: options.sessionTickets ? 0 : constants.SSL_OP_NO_TICKET,
  } as const;
  const server = https.createServer(
    {
      ...tlsOptions,
      cert: options.certificatePem,
      key: options.keyPem,
      handshakeTimeout: 10_000,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        log.error({ err }, 'edge request failed');
        answer(res, new AppError('internal_error'), true);
      });
    },
  );
  server.keepAliveTimeout = 65_000;
  // Before http's own listener (registered in the constructor), so the state exists before any
  // request on the connection is parsed.
  server.prependListener('secureConnection', admit);
  server.on('tlsClientError', (err) => {
    if (log.isLevelEnabled('debug'))
      log.debug({ code: (err as { code?: string }).code }, 'edge handshake failed');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  log.info({ port, upstream: options.upstream?.url.origin }, 'edge listener started');
  return {
    url: `https://${host}:${port}`,
    port,
    server,
    setCertificate(certificatePem, keyPem) {
      server.setSecureContext({ ...tlsOptions, cert: certificatePem, key: keyPem });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
