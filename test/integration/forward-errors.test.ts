/**
 * Upstream failures through the forward proxy core, each answered with its gateway error code
 * (API.md, Runtime): real peers on loopback that distrust us, are distrusted, refuse, or stall.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/app-error.js';
import { DispatcherCache, type ForwardCredential } from '../../src/forward/dispatchers.js';
import { mapUpstreamError, proxyRequest } from '../../src/forward/proxy.js';
import { writeRawProblem } from '../../src/http/problem.js';
import { parseForwardUrl } from '../../src/net/address-guard.js';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';

let pki: TestPki;
let otherPki: TestPki;
let clientLeaf: CertKey;
/** Trusts our root: the happy peer. */
let trusting: https.Server;
/** Accepts only client certificates of another root: refuses ours. */
let refusing: https.Server;
/** Completes TLS and reads the request, never answers. */
let silent: https.Server;
/** Accepts TCP, never speaks TLS. */
let blackhole: net.Server;
const heldSockets: net.Socket[] = [];
let handshakes = 0;
let ports: Record<'trusting' | 'refusing' | 'silent' | 'blackhole' | 'closed', number>;

const timeouts = { connectTimeoutMs: 400, headersTimeoutMs: 400, bodyTimeoutMs: 2_000, idleTimeoutMs: 5_000 };
let privateCache: DispatcherCache;
let publicCache: DispatcherCache;
const fronts: http.Server[] = [];
let privateFront: string;
let publicFront: string;
const credentials = new Map<string, ForwardCredential>();
const client = new Agent();
const failures: AppError[] = [];

function chain(leaf: CertKey, of: TestPki): string {
  return `${leaf.certPem}\n${of.intermediate.certPem}`;
}

async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function stop(server: net.Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return;
  if (server instanceof http.Server) server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** A front like the runtime route: parse the URL, lease, proxy, answer problem+json with Twoway-Error. */
async function makeFront(cache: DispatcherCache, allowPrivate: boolean): Promise<string> {
  const server = http.createServer((req, res) => {
    void (async () => {
      let lease: ReturnType<DispatcherCache['lease']> | undefined;
      try {
        const raw = req.headers['twoway-forward-url'];
        const url = parseForwardUrl(typeof raw === 'string' ? raw : undefined, allowPrivate);
        const name = req.headers['twoway-test-credential'];
        const found = credentials.get(typeof name === 'string' ? name : 'trusted');
        if (found === undefined) throw new AppError('bad_request', 'unknown test credential');
        lease = cache.lease(found);
        await proxyRequest(req, res, { url, dispatcher: lease.dispatcher });
      } catch (err) {
        const appError = err instanceof AppError ? err : mapUpstreamError(err);
        failures.push(appError);
        writeRawProblem(res, appError);
      } finally {
        lease?.release();
      }
    })();
  });
  fronts.push(server);
  return `http://127.0.0.1:${await listen(server)}/v1/runtime/forward`;
}

async function forward(front: string, target: string, credential = 'trusted') {
  const response = await request(front, {
    dispatcher: client,
    headers: { 'twoway-forward-url': target, 'twoway-test-credential': credential },
  });
  const body = (await response.body.json()) as { code?: string; detail?: string };
  return { status: response.statusCode, error: response.headers['twoway-error'], body };
}

function causeCode(err: AppError | undefined): unknown {
  let cause: unknown = err?.cause;
  for (let depth = 0; depth < 5 && cause instanceof Error; depth += 1) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
    cause = cause.cause;
  }
  return (err?.cause as { code?: unknown } | undefined)?.code;
}

beforeAll(async () => {
  pki = await makePki('Forward Errors Test');
  otherPki = await makePki('Forward Errors Other');
  const serverLeaf = await pki.leaf({
    cn: 'upstream.test',
    eku: 'serverAuth',
    ips: ['127.0.0.1'],
    dns: ['localhost'],
  });
  clientLeaf = await pki.leaf({ cn: 'tenant client' });
  const serverOptions = {
    key: serverLeaf.keyPem,
    cert: chain(serverLeaf, pki),
    requestCert: true,
    rejectUnauthorized: true,
  };

  trusting = https.createServer({ ...serverOptions, ca: pki.root.certPem }, (_req, res) => {
    res.end('{"ok":true}');
  });
  trusting.on('secureConnection', () => {
    handshakes += 1;
  });
  refusing = https.createServer({ ...serverOptions, ca: otherPki.root.certPem }, (_req, res) => {
    res.end('{"ok":true}');
  });
  silent = https.createServer({ ...serverOptions, ca: pki.root.certPem }, (req) => {
    req.resume(); // read the request, never answer
  });
  blackhole = net.createServer((socket) => {
    heldSockets.push(socket); // accept TCP, never answer the ClientHello
  });
  const closed = net.createServer();
  const closedPort = await listen(closed);
  await new Promise((resolve) => closed.close(resolve));
  ports = {
    trusting: await listen(trusting),
    refusing: await listen(refusing),
    silent: await listen(silent),
    blackhole: await listen(blackhole),
    closed: closedPort,
  };

  const key = clientLeaf.keyPem;
  const cert = chain(clientLeaf, pki);
  credentials.set('trusted', {
    key: 't1/id@1#root',
    secureContext: tls.createSecureContext({ key, cert, ca: pki.root.certPem }),
  });
  credentials.set('tls12', {
    key: 't1/id@1#root-tls12',
    secureContext: tls.createSecureContext({ key, cert, ca: pki.root.certPem, maxVersion: 'TLSv1.2' }),
  });
  // No `ca`: the system roots, which do not know the test root.
  credentials.set('system-roots', {
    key: 't1/id@1#system',
    secureContext: tls.createSecureContext({ key, cert }),
  });

  privateCache = new DispatcherCache({ timeouts, allowPrivate: true });
  publicCache = new DispatcherCache({ timeouts, allowPrivate: false });
  privateFront = await makeFront(privateCache, true);
  publicFront = await makeFront(publicCache, false);
});

afterAll(async () => {
  for (const socket of heldSockets) socket.destroy();
  await client.close();
  await Promise.all([privateCache?.close(), publicCache?.close()]);
  await Promise.all([...fronts, trusting, refusing, silent, blackhole].map((server) => stop(server)));
});

describe('forward errors', () => {
  it('reaches the trusting peer (control)', async () => {
    const result = await forward(privateFront, `https://127.0.0.1:${ports.trusting}/`);
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ ok: true });
    expect(result.error).toBeUndefined();
  });

  it('answers upstream_tls_failed when the server certificate is not trusted', async () => {
    const before = failures.length;
    const result = await forward(privateFront, `https://127.0.0.1:${ports.trusting}/`, 'system-roots');
    expect(result.status).toBe(502);
    expect(result.error).toBe('upstream_tls_failed');
    expect(result.body.code).toBe('upstream_tls_failed');
    expect(causeCode(failures[before])).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
  });

  it('answers upstream_tls_failed when the server refuses our client certificate', async () => {
    // A Node peer checks the certificate after the TLS 1.3 handshake and drops the connection
    // without an alert; repeat to catch a race between that close and our request.
    for (let attempt = 0; attempt < 10; attempt += 1) {
      const result = await forward(privateFront, `https://127.0.0.1:${ports.refusing}/`);
      expect(result.status).toBe(502);
      expect(result.error).toBe('upstream_tls_failed');
    }
  });

  it('answers upstream_tls_failed when the server refuses our client certificate over TLS 1.2', async () => {
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const result = await forward(privateFront, `https://127.0.0.1:${ports.refusing}/`, 'tls12');
      expect(result.status).toBe(502);
      expect(result.error).toBe('upstream_tls_failed');
    }
  });

  it('answers upstream_unreachable for a closed port', async () => {
    const result = await forward(privateFront, `https://127.0.0.1:${ports.closed}/`);
    expect(result.status).toBe(502);
    expect(result.error).toBe('upstream_unreachable');
  });

  it('answers upstream_timeout when the peer accepts TCP and never speaks TLS', async () => {
    const started = performance.now();
    const result = await forward(privateFront, `https://127.0.0.1:${ports.blackhole}/`);
    expect(result.status).toBe(504);
    expect(result.error).toBe('upstream_timeout');
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('answers upstream_timeout when the TLS peer never sends response headers', async () => {
    const result = await forward(privateFront, `https://127.0.0.1:${ports.silent}/`);
    expect(result.status).toBe(504);
    expect(result.error).toBe('upstream_timeout');
  });

  it('refuses an IP-literal loopback URL before connecting when private destinations are not allowed', async () => {
    expect(() => parseForwardUrl(`https://127.0.0.1:${ports.trusting}/`, false)).toThrow(
      expect.objectContaining({ code: 'forward_destination_blocked' }),
    );
    const before = handshakes;
    const result = await forward(publicFront, `https://127.0.0.1:${ports.trusting}/`);
    expect(result.status).toBe(403);
    expect(result.error).toBe('forward_destination_blocked');
    expect(handshakes).toBe(before);
  });

  it('refuses a name that resolves to loopback after DNS, without connecting', async () => {
    // parseForwardUrl lets a name through; the guarded lookup refuses the resolved address.
    expect(parseForwardUrl(`https://localhost:${ports.trusting}/`, false).hostname).toBe('localhost');
    const before = handshakes;
    const failuresBefore = failures.length;
    const result = await forward(publicFront, `https://localhost:${ports.trusting}/`);
    expect(result.status).toBe(403);
    expect(result.error).toBe('forward_destination_blocked');
    expect(causeCode(failures[failuresBefore])).toBe('TWOWAY_DESTINATION_BLOCKED');
    expect(handshakes).toBe(before);
  });

  it('reaches the same name when private destinations are allowed (control for the lookup check)', async () => {
    const result = await forward(privateFront, `https://localhost:${ports.trusting}/`);
    expect(result.status).toBe(200);
  });
});
