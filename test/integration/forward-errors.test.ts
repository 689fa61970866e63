/**
 * Upstream failures through the forward proxy core, each answered with its gateway error code
 * (API.md, Runtime): real peers on loopback that distrust us, are distrusted, refuse, or stall.
 */
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import pino from 'pino';
import { Agent, errors, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/app-error.js';
import { DispatcherCache, type ForwardCredential } from '../../src/forward/dispatchers.js';
import { ForwardEndpoint } from '../../src/forward/endpoint.js';
import { mapUpstreamError, proxyRequest } from '../../src/forward/proxy.js';
import { createMetrics } from '../../src/http/metrics.js';
import { writeRawProblem } from '../../src/http/problem.js';
import { parseForwardUrl } from '../../src/net/address-guard.js';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';
import { finalResponse, serveRawHttp } from '../helpers/raw-upstream.js';

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
/** Completes TLS, then answers every request with bytes that are not HTTP. */
let garbage: tls.Server;
/** Completes TLS and answers by hand: interim (1xx) responses, then the final one (see rawAnswer). */
let interim: tls.Server;
let interimConnections = 0;
const heldSockets: net.Socket[] = [];
let handshakes = 0;
let ports: Record<
  'trusting' | 'refusing' | 'silent' | 'blackhole' | 'closed' | 'garbage' | 'interim',
  number
>;

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

const FINAL = finalResponse;

/** What the hand-written server sends for a request path (serveRawHttp). */
function rawAnswer(path: string, body: string): string[] {
  switch (path) {
    case '/continue':
      return ['HTTP/1.1 100 Continue\r\n\r\n', FINAL(`continued ${body}`)];
    case '/together':
      // Two 100s and a 103 Early Hints with a header, in the same record as the final response.
      return [
        `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n${FINAL('together')}`,
      ];
    case '/split':
      // The interim response arrives in pieces, the last one with the start of the final response.
      return ['HTTP/1.1 10', '0 Continue\r', `\n\r\n${FINAL('split').slice(0, 9)}`, FINAL('split').slice(9)];
    case '/body-like-interim':
      // A final response whose body (a record of its own) looks like an interim response.
      return [FINAL('HTTP/1.1 100 Continue\r\n\r\n').slice(0, -25), 'HTTP/1.1 100 Continue\r\n\r\n'];
    default:
      return [FINAL('plain')];
  }
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
  const rawOptions = { key: serverLeaf.keyPem, cert: chain(serverLeaf, pki) };
  garbage = tls.createServer(rawOptions, (socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.write('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\nProtocol mismatch.\r\n'));
  });
  interim = tls.createServer(rawOptions, (socket) => {
    interimConnections += 1;
    serveRawHttp(socket, rawAnswer);
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
    garbage: await listen(garbage),
    interim: await listen(interim),
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
  await Promise.all(
    [...fronts, trusting, refusing, silent, blackhole, garbage, interim].map((server) => stop(server)),
  );
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

describe('remote servers that bend HTTP', () => {
  it('answers upstream_protocol_error (502) when the remote server does not speak HTTP', async () => {
    const before = failures.length;
    const result = await forward(privateFront, `https://127.0.0.1:${ports.garbage}/`);
    expect(result.status).toBe(502);
    expect(result.error).toBe('upstream_protocol_error');
    expect(result.body.code).toBe('upstream_protocol_error');
    expect(failures[before]?.cause).toBeInstanceOf(errors.HTTPParserError);
  });

  it('skips an unsolicited 100 Continue before the final response (RFC 9110 §15.2)', async () => {
    const response = await request(privateFront, {
      dispatcher: client,
      headers: { 'twoway-forward-url': `https://127.0.0.1:${ports.interim}/continue` },
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['twoway-error']).toBeUndefined();
    expect(await response.body.text()).toBe('continued ');
  });

  it('skips several interim responses in one record, and one that arrives in pieces, on one kept-alive connection', async () => {
    const connections = interimConnections;
    const get = async (path: string) => {
      const response = await request(privateFront, {
        dispatcher: client,
        headers: { 'twoway-forward-url': `https://127.0.0.1:${ports.interim}${path}` },
      });
      return { status: response.statusCode, body: await response.body.text() };
    };
    expect(await get('/together')).toEqual({ status: 200, body: 'together' });
    expect(await get('/split')).toEqual({ status: 200, body: 'split' });
    expect(await get('/continue')).toEqual({ status: 200, body: 'continued ' });
    // A body that looks like an interim response is a body: only a response's start is looked at.
    expect(await get('/body-like-interim')).toEqual({
      status: 200,
      body: 'HTTP/1.1 100 Continue\r\n\r\n',
    });
    expect(await get('/plain')).toEqual({ status: 200, body: 'plain' });
    expect(interimConnections - connections).toBeLessThanOrEqual(1);
  });

  it('skips a 100 Continue on a request with a body, which arrives whole', async () => {
    const response = await request(privateFront, {
      dispatcher: client,
      method: 'POST',
      headers: { 'twoway-forward-url': `https://127.0.0.1:${ports.interim}/continue` },
      body: 'x'.repeat(5000),
    });
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe(`continued ${'x'.repeat(5000)}`);
  });

  it('logs a remote server that does not speak HTTP at warn, a few lines a minute, not one per request', async () => {
    const lines: { level: number; msg: string; reason?: string; suppressed?: number }[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const found = credentials.get('trusted') as ForwardCredential;
    const endpoint = new ForwardEndpoint({
      tenants: {
        authenticate: async () => ({
          kind: 'tenant',
          tenantId: 'acme',
          actor: 'api-key:key_1',
          permissions: new Set(['runtime:forward'] as const),
        }),
      },
      runtime: {
        plan: async () => ({ mappingId: 'map_1', identityId: 'idt_1', version: 1, credential: found }),
      },
      dispatchers: privateCache,
      metrics: createMetrics(),
      forwardAllowPrivate: true,
      logger: pino({ level: 'debug' }, sink),
    });
    const server = http.createServer((req, res) => endpoint.serve(req, res));
    const port = await listen(server);
    try {
      for (let i = 0; i < 10; i += 1) {
        const response = await request(`http://127.0.0.1:${port}/v1/runtime/forward`, {
          dispatcher: client,
          headers: {
            authorization: 'Bearer any',
            'twoway-service': 'api',
            'twoway-forward-url': `https://127.0.0.1:${ports.garbage}/`,
          },
        });
        await response.body.dump();
        expect([response.statusCode, response.headers['twoway-error']]).toEqual([
          502,
          'upstream_protocol_error',
        ]);
      }
    } finally {
      await stop(server);
    }
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    const warned = lines.filter((line) => line.msg === 'remote server answered outside HTTP');
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.length).toBeLessThanOrEqual(3);
    expect(warned[0]).toMatchObject({ level: 40, tenantId: 'acme', service: 'api' });
    expect(warned[0]?.reason).toMatch(/HTTP\/1\.1/);
  });
});
