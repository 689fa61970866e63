/**
 * The forward proxy core: one client request streamed to one upstream over a leased undici
 * dispatcher, and the upstream response streamed back. No framework objects, no logging, no JSON:
 * this is the hot path (FIELD-NOTES: nginx forwards a pooled mTLS request for ~18 µs of CPU, a bare
 * Node forwarder ~50 µs; everything here is counted against that).
 *
 * It uses `dispatcher.dispatch()` with a handler object instead of `dispatcher.request()`: the
 * latter wraps the body in a Readable and the caller pipes it, one more stream per response. The
 * handler implements undici's original callbacks (onConnect/onHeaders/onData/onComplete/onError),
 * which undici 7's core still calls directly; a handler with the newer onRequestStart/onResponse*
 * methods is wrapped per request in an UnwrapHandler that also parses the raw headers into an object
 * (lib/handler/unwrap-handler.js). The raw form is what we need anyway to copy headers unchanged.
 * Backpressure: onData returns `res.write()`'s result, which pauses undici's parser (and with it the
 * upstream socket); the client's `drain` resumes it. undici's body timeout does not run while paused.
 */
import type http from 'node:http';
import { type Dispatcher, errors } from 'undici';
import { AppError } from '../errors/app-error.js';
import { DESTINATION_BLOCKED } from '../net/address-guard.js';

/** What {@link proxyRequest} sends where. */
export interface ProxyOptions {
  /** The upstream URL, already checked by parseForwardUrl; origin + path + query are used. */
  url: URL;
  /** A leased dispatcher (DispatcherCache.lease), the credential's Agent. */
  dispatcher: Dispatcher;
  /** Extra request header names to drop, lowercase. */
  dropHeaders?: ReadonlySet<string>;
  /**
   * Request headers to add after the filtering, flat `[name, value, ...]` (the edge's identity
   * headers, a connection's credential).
   */
  addHeaders?: readonly string[];
  /**
   * Forward the caller's `Authorization` (it authenticated to Twoway with `Proxy-Authorization`,
   * RFC 9110 §11.7.1); otherwise it is the caller's credential for Twoway and is dropped.
   */
  forwardAuthorization?: boolean;
}

/** The promise's value: the status written to the client, or 499 when the client went away first. */
export interface ProxyResult {
  status: number;
}

/** Status reported when the client closed before the response was finished (nginx's convention). */
export const CLIENT_CLOSED_STATUS = 499;

/**
 * Hop-by-hop fields (RFC 9110 §7.6.1), never forwarded in either direction, plus `proxy-connection`
 * (non-standard, still sent by old clients) and `keep-alive` (RFC 2068 §19.7.1).
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

const kForward = Symbol('twoway.forward');
type TaggedResponse = http.ServerResponse & { [kForward]?: ForwardHandler };

/**
 * Adds the field names listed in a Connection value (RFC 9110 §7.6.1) to `named`, lowercase, and
 * returns it; allocates only when a name not already dropped appears. `keep-alive` and `close`,
 * by far the common values, are connection options, not field names we would otherwise forward.
 */
function connectionOptions(value: string, named: string[] | null): string[] | null {
  const lower = value.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return named;
  let list = named;
  for (const token of lower.split(',')) {
    const name = token.trim();
    if (name.length > 0 && name !== 'close' && !HOP_BY_HOP.has(name)) {
      list ??= [];
      list.push(name);
    }
  }
  return list;
}

/**
 * The request header list for undici, flat `[name, value, ...]` from `req.rawHeaders` (original case
 * and order; `req.headers` is never built). Drops hop-by-hop fields and those named in Connection,
 * `authorization` unless `keepAuthorization` (the caller's credential for Twoway, not for the remote
 * server, unless it authenticated with Proxy-Authorization), `host` (undici
 * sets it from the URL), `expect` (Node's server already answered 100-continue; undici refuses it)
 * and every `twoway-*` field, and every field whose name spelt with `_` for `-` is one of those
 * ({@link foldsToDropped}). Sets `body` when the request declares one (RFC 9112 §6.1).
 */
class RequestHeaders {
  headers: string[] = [];
  hasBody = false;

  constructor(raw: string[], drop: ReadonlySet<string> | undefined, keepAuthorization: boolean) {
    let named: string[] | null = null;
    const out = this.headers;
    let seenLength = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      const lower = name.toLowerCase();
      if (lower.includes('_') && foldsToDropped(lower, drop)) continue;
      if (HOP_BY_HOP.has(lower)) {
        if (lower === 'connection') {
          named = connectionOptions(value, named);
        } else if (lower === 'transfer-encoding') {
          this.hasBody = true;
        }
        continue;
      }
      if (
        (lower === 'authorization' && !keepAuthorization) ||
        lower === 'host' ||
        lower === 'expect' ||
        lower.startsWith('twoway-') ||
        drop?.has(lower) === true
      ) {
        continue;
      }
      if (lower === 'content-length') {
        // Node's parser refuses conflicting lengths; an identical repeat would make undici throw.
        if (seenLength) continue;
        seenLength = true;
        if (value !== '0') this.hasBody = true;
      }
      out.push(name, value);
    }
    if (named !== null) this.headers = withoutNamed(out, named);
  }
}

/** Request fields the proxy sets or acts on itself, besides hop-by-hop ones and `twoway-*`. */
const CONSUMED: ReadonlySet<string> = new Set(['authorization', 'host', 'expect', 'content-length']);

/**
 * True when a lowercase field name holding `_` reads, with each `_` taken as `-`, as a field the
 * proxy drops or acts on (hop-by-hop, {@link CONSUMED}, `twoway-*`, `drop`). CGI-style servers
 * (Python's wsgiref, PHP, Puma before 6.4.3: CVE-2024-45614) map `X_Forwarded_Client_Cert` and
 * `X-Forwarded-Client-Cert` to the same variable, so a copy spelt with underscores would stand in
 * for the field the gateway removed or set (nginx and Envoy drop such names by default for this
 * reason). Such a field is dropped whole, never given the meaning of its dashed spelling.
 */
function foldsToDropped(lower: string, drop: ReadonlySet<string> | undefined): boolean {
  const folded = lower.replaceAll('_', '-');
  return (
    HOP_BY_HOP.has(folded) ||
    CONSUMED.has(folded) ||
    folded.startsWith('twoway-') ||
    drop?.has(folded) === true
  );
}

/** Drops the pairs whose (lowercase) name is in `named`; only runs when a Connection field listed options. */
function withoutNamed<T extends string>(pairs: T[], named: string[]): T[] {
  const kept: T[] = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i] as T;
    if (!named.includes(name.toLowerCase())) kept.push(name, pairs[i + 1] as T);
  }
  return kept;
}

/**
 * The response header list for `res.writeHead`, from undici's raw Buffers (latin1, as on the wire),
 * less hop-by-hop fields and `Twoway-Error`: that header marks errors made by the gateway (API.md),
 * so a remote server must not be able to send one that a caller would take for the gateway's.
 */
function responseHeaders(raw: Buffer[]): string[] {
  const out: string[] = [];
  let named: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    const value = (raw[i + 1] as Buffer).toString('latin1');
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'connection') named = connectionOptions(value, named);
      continue;
    }
    if (lower === 'twoway-error') continue;
    out.push(name, value);
  }
  return named === null ? out : withoutNamed(out, named);
}

// Shared listeners: `this` is the response, the handler hangs off it. No closures per request.
function onResponseDrain(this: TaggedResponse): void {
  this[kForward]?.resumeUpstream();
}
function onResponseFinish(this: TaggedResponse): void {
  this[kForward]?.finished();
}
function onResponseClose(this: TaggedResponse): void {
  this[kForward]?.clientClosed();
}

/** The error used to abort the upstream request when the client has gone. */
class ClientClosedError extends Error {
  readonly code = 'TWOWAY_CLIENT_CLOSED';
}

/** One forward: undici handler (legacy callback form, see the module comment) plus promise settlement. */
class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly res: TaggedResponse;
  readonly promise: Promise<ProxyResult>;
  status = 0;
  /** writeHead() done: from here on, failures destroy `res`. */
  started = false;
  settled = false;
  clientGone = false;
  upstreamDone = false;
  drainHooked = false;
  abortUpstream: ((err?: Error) => void) | null = null;
  resume: (() => void) | null = null;
  /** The client's request, to tell whether its body was fully received when the answer starts. */
  req: http.IncomingMessage | null = null;
  resolve!: (value: ProxyResult) => void;
  reject!: (reason: AppError) => void;

  constructor(res: TaggedResponse) {
    this.res = res;
    this.promise = new Promise<ProxyResult>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.clientGone) abort(new ClientClosedError('client closed'));
    else this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx (102, 103) are interim: wait for the final response; 101 cannot occur, Upgrade is dropped.
    if (statusCode < 200) return true;
    const res = this.res;
    if (this.clientGone) return false;
    this.resume = resume;
    this.status = statusCode;
    const headers = responseHeaders(rawHeaders);
    // The remote answered before the client finished sending its body (nginx's `return` does):
    // close the client connection after this response rather than wait for a body nobody reads.
    if (this.req !== null && !this.req.complete) res.shouldKeepAlive = false;
    try {
      if (statusText.length > 0) res.writeHead(statusCode, statusText, headers);
      else res.writeHead(statusCode, headers);
    } catch (err) {
      // A header Node refuses to send: nothing went out, so undo the status writeHead set and let
      // undici abort (it calls onError, which rejects with res still answerable).
      res.statusCode = 200;
      res.statusMessage = '';
      throw err;
    }
    this.started = true;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.clientGone) return false;
    if (this.res.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', onResponseDrain);
    }
    return false;
  }

  onComplete(): void {
    this.upstreamDone = true;
    // Upstream trailers are dropped with the Trailer field (hop-by-hop).
    this.res.on('finish', onResponseFinish);
    this.res.end();
  }

  onError(err: Error): void {
    this.upstreamDone = true;
    if (this.settled) return;
    if (this.clientGone || this.res.destroyed || err instanceof ClientClosedError) {
      this.settle(CLIENT_CLOSED_STATUS);
      return;
    }
    const appError = mapUpstreamError(err);
    this.settled = true;
    // No error argument: the server's clientError handling (and Fastify's) stays out of it.
    if (this.started) this.res.destroy();
    this.reject(appError);
  }

  resumeUpstream(): void {
    this.resume?.();
  }

  finished(): void {
    this.settle(this.status);
  }

  clientClosed(): void {
    if (this.settled) return;
    if (this.res.writableFinished) {
      this.settle(this.status);
      return;
    }
    this.clientGone = true;
    if (!this.upstreamDone && this.abortUpstream !== null) {
      this.abortUpstream(new ClientClosedError('client closed'));
    }
    this.settle(CLIENT_CLOSED_STATUS);
  }

  settle(status: number): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve({ status });
  }
}

/**
 * Streams `req` to `options.url` over `options.dispatcher` and the response back to `res`.
 *
 * Request: method; headers from `req.rawHeaders` less hop-by-hop ones (RFC 9110 §7.6.1: connection,
 * keep-alive, proxy-connection, te, trailer, transfer-encoding, upgrade, proxy-authorization,
 * proxy-authenticate, and every field named in Connection), less `authorization` (unless
 * `options.forwardAuthorization`), `host`, `expect`, `twoway-*`, `options.dropHeaders` and any of
 * these spelt with `_` for `-` (RequestHeaders), plus `options.addHeaders`; the body streamed from
 * `req` (no buffering; only when the request declares one with Content-Length > 0 or
 * Transfer-Encoding, so GET/HEAD go without body).
 * Response: status, reason phrase, headers (less hop-by-hop ones and `Twoway-Error`) and body
 * written to `res` as they arrive, with backpressure both ways.
 *
 * Resolves `{ status }` when `res` has finished; `{ status: 499 }` when the client closed first (the
 * upstream request is then aborted). Rejects with an AppError from {@link mapUpstreamError}
 * (`upstream_tls_failed`, `upstream_unreachable`, `upstream_protocol_error`, `upstream_timeout`,
 * `forward_destination_blocked`):
 * before the response started `res` is untouched, so the caller answers with problem+json and
 * `Twoway-Error`; once started (`res.headersSent`), `res` has been destroyed and must not be answered.
 */
export function proxyRequest(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  options: ProxyOptions,
): Promise<ProxyResult> {
  const handler = new ForwardHandler(res);
  handler.req = req;
  const tagged = res as TaggedResponse;
  tagged[kForward] = handler;
  tagged.on('close', onResponseClose);
  const request = new RequestHeaders(
    req.rawHeaders,
    options.dropHeaders,
    options.forwardAuthorization === true,
  );
  if (options.addHeaders !== undefined) request.headers.push(...options.addHeaders);
  const url = options.url;
  options.dispatcher.dispatch(
    {
      origin: url.origin,
      path: url.pathname + url.search,
      method: req.method as Dispatcher.HttpMethod,
      headers: request.headers,
      body: request.hasBody ? req : null,
    },
    handler,
  );
  return handler.promise;
}

/**
 * Codes of OpenSSL certificate verification failures as Node reports them (X509_V_ERR_* names), plus
 * Node's host name check: the remote server's certificate is not trusted. The certificate tester
 * uses the same list.
 */
export const CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
]);

const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NODATA',
  'EAI_NONAME',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_ABORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  // Node refusing a header the upstream sent (writeHead validation).
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
]);

/**
 * True for undici's HTTP/1.1 parser error: the remote server's bytes are not an HTTP/1.1 response.
 * undici 7 builds it without the llhttp error name (`code` stays undefined: it looks the number up in
 * a table keyed by name), so the class is what tells; an `HPE_*` code is accepted too.
 */
function isParserError(err: unknown, depth = 0): boolean {
  if (depth > 4 || err === null || typeof err !== 'object') return false;
  if (err instanceof errors.HTTPParserError) return true;
  const { code, cause } = err as CodedError;
  if (typeof code === 'string' && code.startsWith('HPE_')) return true;
  return isParserError(cause, depth + 1);
}

interface CodedError {
  code?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** Depth-first over `err`, its `cause` chain and AggregateError members (Happy Eyeballs), bounded. */
function findCode(err: unknown, depth: number, test: (code: string) => boolean): string | null {
  if (depth > 4 || err === null || typeof err !== 'object') return null;
  const { code, cause, errors } = err as CodedError;
  if (typeof code === 'string' && test(code)) return code;
  if (Array.isArray(errors)) {
    for (const member of errors) {
      const found = findCode(member, depth + 1, test);
      if (found !== null) return found;
    }
  }
  return findCode(cause, depth + 1, test);
}

const isBlocked = (code: string): boolean => code === DESTINATION_BLOCKED;
const isCertificate = (code: string): boolean => CERTIFICATE_CODES.has(code);
const isTls = (code: string): boolean => code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
const isTimeout = (code: string): boolean => TIMEOUT_CODES.has(code);
const isUnreachable = (code: string): boolean => UNREACHABLE_CODES.has(code);

/**
 * True when the server accepted TCP and closed during or right after the TLS handshake without a
 * TLS alert, which is how a Node server (requestCert + rejectUnauthorized) refuses a client
 * certificate: it checks it in JS once OpenSSL finishes and then drops the socket (FIELD-NOTES:
 * "Node and HAProxy refuse the handshake"). Two shapes:
 * - TLS 1.2: Node's `onConnectEnd` "disconnected before secure TLS connection was established", an
 *   ECONNRESET made by Node itself, so without the `syscall` a libuv socket error carries;
 * - TLS 1.3: our handshake completes before the server has checked our certificate, so undici sees
 *   "other side closed" (UND_ERR_SOCKET) on a connection that never received a response byte. A
 *   reused keep-alive connection has read earlier responses, so `bytesRead` 0 means a fresh one.
 * A TCP load balancer with no backend that closes with FIN looks the same; under mTLS a refused
 * certificate is by far the likelier cause, and the detail says "may".
 */
function closedDuringHandshake(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false;
  const { code, socket, syscall } = err as {
    code?: unknown;
    socket?: { bytesRead?: unknown };
    syscall?: unknown;
  };
  if (code === 'ECONNRESET') return syscall === undefined;
  return code === 'UND_ERR_SOCKET' && socket?.bytesRead === 0;
}

/**
 * Maps an upstream failure (undici, Node net/tls, OpenSSL) to an AppError with a short, safe detail
 * and the original error as `cause`, checked in this order over the error, its causes and
 * AggregateError members:
 * - `TWOWAY_DESTINATION_BLOCKED` (guardedLookup) → `forward_destination_blocked` (403);
 * - certificate verification codes (UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT,
 *   SELF_SIGNED_CERT_IN_CHAIN, CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ...), `ERR_SSL_*`
 *   and `ERR_TLS_*` (incl. TLS alerts such as the server refusing our client certificate), and a
 *   fresh connection closed before any response byte (a TLS 1.3 server refusing our certificate
 *   without an alert, see closedDuringHandshake) → `upstream_tls_failed` (502);
 * - connect, headers and body timeouts → `upstream_timeout` (504);
 * - undici's parser error (a reply that is not HTTP/1.1: another protocol, garbage) →
 *   `upstream_protocol_error` (502);
 * - ECONNREFUSED, ENOTFOUND, EHOSTUNREACH, ECONNRESET, undici socket errors
 *   → `upstream_unreachable` (502);
 * - an AppError is returned as is; anything else → `internal_error` (500).
 */
export function mapUpstreamError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const options = { cause: err };
  if (findCode(err, 0, isBlocked) !== null) {
    return new AppError(
      'forward_destination_blocked',
      'The forward destination resolves to a blocked address.',
      options,
    );
  }
  const certificate = findCode(err, 0, isCertificate);
  if (certificate !== null) {
    return new AppError(
      'upstream_tls_failed',
      certificate === 'ERR_TLS_CERT_ALTNAME_INVALID' || certificate === 'HOSTNAME_MISMATCH'
        ? "The remote server's certificate does not match its host name."
        : "The remote server's certificate could not be verified.",
      options,
    );
  }
  const tls = findCode(err, 0, isTls);
  if (tls !== null) {
    return new AppError(
      'upstream_tls_failed',
      tls.includes('ALERT')
        ? 'The remote server ended the TLS handshake; it may have refused the client certificate.'
        : 'The TLS handshake with the remote server failed.',
      options,
    );
  }
  if (closedDuringHandshake(err)) {
    return new AppError(
      'upstream_tls_failed',
      'The remote server closed the connection at the TLS handshake; it may have refused the client certificate.',
      options,
    );
  }
  if (findCode(err, 0, isTimeout) !== null) {
    return new AppError('upstream_timeout', 'The remote server did not answer in time.', options);
  }
  if (isParserError(err)) {
    return new AppError(
      'upstream_protocol_error',
      'The remote server answered with something that is not an HTTP/1.1 response.',
      options,
    );
  }
  if (findCode(err, 0, isUnreachable) !== null) {
    return new AppError('upstream_unreachable', 'The remote server could not be reached.', options);
  }
  return new AppError('internal_error', undefined, options);
}

/** The message of an AppError's cause (undici's, naming what was wrong), for a log line; never a URL. */
export function causeMessage(err: AppError): string | undefined {
  return err.cause instanceof Error ? err.cause.message : undefined;
}
