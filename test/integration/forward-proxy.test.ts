/**
 * The forward proxy core against real peers on loopback: a plain node:http front whose handler calls
 * proxyRequest, and an mTLS upstream (node:https, requestCert + rejectUnauthorized) that reports the
 * client certificate it was shown and what it received.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintSha256 } from '../../src/certificates/index.js';
import { AppError } from '../../src/errors/app-error.js';
import { DispatcherCache, type ForwardCredential } from '../../src/forward/dispatchers.js';
import { mapUpstreamError, proxyRequest } from '../../src/forward/proxy.js';
import { writeRawProblem } from '../../src/http/problem.js';
import { parseForwardUrl } from '../../src/net/address-guard.js';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';

interface Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  subject: string;
  fingerprintSha256: string;
  sessionReused: boolean;
  bodyLength: number;
  bodySha256: string;
}

const MiB = 1024 * 1024;
const CHUNK = randomBytes(64 * 1024);

let pki: TestPki;
let serverLeaf: CertKey;
let clientA: CertKey;
let clientB: CertKey;
let upstream: https.Server;
let upstreamOrigin: string;
let handshakes = 0;
let front: http.Server;
let frontUrl: string;
let cache: DispatcherCache;
const credentials = new Map<string, ForwardCredential>();
const results: Array<{ status: number } | AppError> = [];
const client = new Agent({ keepAliveTimeout: 10_000 });

/** Held '/slow' responses, released by the test. */
const slow: Array<{ res: http.ServerResponse; closed: boolean }> = [];
/** Bytes the '/stream' route has handed to its socket so far. */
let streamWritten = 0;

function credential(
  key: string,
  leaf: CertKey,
  ca: string | undefined = pki.root.certPem,
): ForwardCredential {
  return {
    key,
    secureContext: tls.createSecureContext({
      key: leaf.keyPem,
      cert: `${leaf.certPem}\n${pki.intermediate.certPem}`,
      ca,
    }),
  };
}

function upstreamHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'https://upstream.test');
  const socket = req.socket as tls.TLSSocket;
  if (url.pathname === '/slow') {
    const held = { res, closed: false };
    res.on('close', () => {
      held.closed = true;
    });
    slow.push(held);
    return;
  }
  if (url.pathname === '/stream') {
    const chunks = Number(url.searchParams.get('chunks'));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = (): void => {
      while (sent < chunks) {
        sent += 1;
        streamWritten += CHUNK.length;
        if (!res.write(CHUNK)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
    return;
  }
  const hash = createHash('sha256');
  let length = 0;
  req.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    length += chunk.length;
  });
  req.on('end', () => {
    const peer = socket.getPeerCertificate();
    const echo: Echo = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      subject: String(peer.subject?.CN ?? ''),
      fingerprintSha256: fingerprintSha256(peer),
      sessionReused: socket.isSessionReused(),
      bodyLength: length,
      bodySha256: hash.digest('hex'),
    };
    const body = JSON.stringify(echo);
    res.statusMessage = 'Created Here';
    res.statusCode = 201;
    res.setHeader('content-type', 'application/json');
    res.setHeader('content-length', Buffer.byteLength(body));
    res.setHeader('x-upstream', 'echo');
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('x-hop-resp', 'must not pass');
    res.setHeader('proxy-authenticate', 'Basic realm="upstream"');
    if (url.pathname === '/close') {
      res.setHeader('connection', 'close, x-hop-resp');
    } else {
      res.setHeader('connection', 'keep-alive, x-hop-resp');
      res.setHeader('keep-alive', 'timeout=30');
    }
    res.end(body);
  });
}

function frontHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  void (async () => {
    let lease: ReturnType<DispatcherCache['lease']> | undefined;
    try {
      const raw = req.headers['twoway-forward-url'];
      const url = parseForwardUrl(typeof raw === 'string' ? raw : undefined, true);
      const name = req.headers['twoway-test-credential'];
      const found = credentials.get(typeof name === 'string' ? name : 'a');
      if (found === undefined) throw new AppError('bad_request', 'unknown test credential');
      lease = cache.lease(found);
      results.push(
        await proxyRequest(req, res, {
          url,
          dispatcher: lease.dispatcher,
          dropHeaders: new Set(['x-drop-extra']),
        }),
      );
    } catch (err) {
      const appError = err instanceof AppError ? err : mapUpstreamError(err);
      results.push(appError);
      writeRawProblem(res, appError);
    } finally {
      lease?.release();
    }
  })();
}

/** An mTLS upstream (requestCert + rejectUnauthorized, the test PKI's root) serving upstreamHandler. */
function echoUpstream(): https.Server {
  return https.createServer(
    {
      key: serverLeaf.keyPem,
      cert: `${serverLeaf.certPem}\n${pki.intermediate.certPem}`,
      ca: pki.root.certPem,
      requestCert: true,
      rejectUnauthorized: true,
    },
    upstreamHandler,
  );
}

async function listen(server: http.Server | https.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function stop(server: http.Server | https.Server | undefined): Promise<void> {
  if (server === undefined || !server.listening) return;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Polls `condition` every 10 ms for at most `timeoutMs`. */
async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function forward(
  path: string,
  options: {
    credential?: string;
    method?: string;
    body?: Buffer | Readable;
    headers?: Record<string, string>;
  } = {},
) {
  const response = await request(frontUrl, {
    dispatcher: client,
    method: (options.method ?? 'GET') as 'GET',
    headers: {
      'twoway-forward-url': `${upstreamOrigin}${path}`,
      'twoway-test-credential': options.credential ?? 'a',
      ...options.headers,
    },
    body: options.body ?? null,
  });
  return response;
}

async function forwardEcho(path: string, options: Parameters<typeof forward>[1] = {}) {
  const response = await forward(path, options);
  const text = await response.body.text();
  expect(response.statusCode, text).toBe(201);
  return { response, echo: JSON.parse(text) as Echo };
}

beforeAll(async () => {
  pki = await makePki('Forward Proxy Test');
  serverLeaf = await pki.leaf({
    cn: 'upstream.test',
    eku: 'serverAuth',
    ips: ['127.0.0.1'],
    dns: ['localhost'],
  });
  clientA = await pki.leaf({ cn: 'tenant-a client' });
  clientB = await pki.leaf({ cn: 'tenant-b client' });
  upstream = echoUpstream();
  upstream.on('secureConnection', () => {
    handshakes += 1;
  });
  upstreamOrigin = `https://127.0.0.1:${await listen(upstream)}`;
  cache = new DispatcherCache({
    timeouts: {
      connectTimeoutMs: 5_000,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 10_000,
      idleTimeoutMs: 10_000,
    },
    allowPrivate: true,
  });
  credentials.set('a', credential('t1/id-a@1#root', clientA));
  credentials.set('b', credential('t2/id-b@1#root', clientB));
  front = http.createServer(frontHandler);
  frontUrl = `http://127.0.0.1:${await listen(front)}/v1/runtime/forward`;
});

afterAll(async () => {
  for (const held of slow) held.res.destroy();
  await client.close();
  await cache?.close();
  await Promise.all([stop(front), stop(upstream)]);
});

describe('proxyRequest', () => {
  it('forwards a GET with the mapped client certificate and returns status, headers and body unchanged', async () => {
    const { response, echo } = await forwardEcho('/echo/items?q=1&r=%2F');
    expect(echo.method).toBe('GET');
    expect(echo.url).toBe('/echo/items?q=1&r=%2F');
    expect(echo.fingerprintSha256).toBe(clientA.fingerprintSha256);
    expect(echo.subject).toBe('tenant-a client');
    expect(echo.bodyLength).toBe(0);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['x-upstream']).toBe('echo');
    expect(response.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    expect(response.headers['x-hop-resp']).toBeUndefined();
    expect(response.headers['proxy-authenticate']).toBeUndefined();
    expect(response.headers['keep-alive']).not.toBe('timeout=30');
  });

  it('keeps the reason phrase and Content-Length of the remote response', async () => {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(frontUrl, {
        headers: { 'twoway-forward-url': `${upstreamOrigin}/echo`, 'twoway-test-credential': 'a' },
        agent: false,
      });
      req.on('response', resolve).on('error', reject).end();
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    expect(response.statusCode).toBe(201);
    expect(response.statusMessage).toBe('Created Here');
    expect(Number(response.headers['content-length'])).toBe(body.length);
  });

  it('answers HEAD with the remote headers and no body', async () => {
    const response = await forward('/echo', { method: 'HEAD' });
    expect(response.statusCode).toBe(201);
    expect(Number(response.headers['content-length'])).toBeGreaterThan(0);
    expect(response.headers['x-upstream']).toBe('echo');
    expect((await response.body.arrayBuffer()).byteLength).toBe(0);
  });

  it('streams a 5 MiB POST body both ways unchanged (chunked in, sha256 equal)', async () => {
    const payload = randomBytes(5 * MiB);
    const expected = createHash('sha256').update(payload).digest('hex');
    const chunked = Readable.from(
      (function* () {
        for (let offset = 0; offset < payload.length; offset += 256 * 1024) {
          yield payload.subarray(offset, offset + 256 * 1024);
        }
      })(),
    );
    const { echo } = await forwardEcho('/echo', { method: 'POST', body: chunked });
    expect(echo.method).toBe('POST');
    expect(echo.bodyLength).toBe(payload.length);
    expect(echo.bodySha256).toBe(expected);
    expect(echo.fingerprintSha256).toBe(clientA.fingerprintSha256);
    expect(echo.headers['transfer-encoding']).toBe('chunked');

    const { echo: withLength } = await forwardEcho('/echo', { method: 'PUT', body: payload });
    expect(withLength.method).toBe('PUT');
    expect(withLength.headers['content-length']).toBe(String(payload.length));
    expect(withLength.bodySha256).toBe(expected);
  });

  it('streams a large response with backpressure instead of buffering it', async () => {
    const chunks = 1024; // 64 MiB
    streamWritten = 0;
    const response = await forward(`/stream?chunks=${chunks}`);
    expect(response.statusCode).toBe(200);
    const iterator = response.body[Symbol.asyncIterator]();
    let received = ((await iterator.next()).value as Buffer).length;
    // The client stops reading: the proxy must stop reading the upstream too, so the upstream's
    // writes stall after at most the socket buffers on the path (a few MiB), far from 64 MiB.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const writtenWhilePaused = streamWritten;
    expect(writtenWhilePaused).toBeLessThan((chunks * CHUNK.length) / 2);
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      received += (next.value as Buffer).length;
    }
    expect(received).toBe(chunks * CHUNK.length);
  });

  it('drops hop-by-hop, Connection-named, Authorization, Host and Twoway-* request headers', async () => {
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request(frontUrl, {
        method: 'POST',
        agent: false,
        headers: [
          'Twoway-Forward-Url',
          `${upstreamOrigin}/echo`,
          'Twoway-Tenant',
          'tenant-1',
          'Twoway-Service',
          'billing',
          'twoway-test-credential',
          'b',
          'Authorization',
          'Bearer operator-secret',
          'Proxy-Authorization',
          'Basic cHJveHk6c2VjcmV0',
          'Host',
          'evil.example',
          'Connection',
          'keep-alive, X-Drop-Me',
          'X-Drop-Me',
          'named in Connection',
          'Keep-Alive',
          'timeout=99',
          'Proxy-Connection',
          'keep-alive',
          'TE',
          'trailers',
          'Upgrade',
          'websocket',
          'X-Drop-Extra',
          'dropped by option',
          'X-Case-Check',
          'kept',
          'x-multi',
          'one',
          'x-multi',
          'two',
          'Content-Type',
          'text/plain',
          'Content-Length',
          '5',
        ],
      });
      req.on('response', resolve).on('error', reject).end('hello');
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    expect(response.statusCode).toBe(201);
    const echo = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Echo;
    const received = echo.headers;
    for (const name of [
      'authorization',
      'proxy-authorization',
      'x-drop-me',
      'keep-alive',
      'proxy-connection',
      'te',
      'upgrade',
      'x-drop-extra',
      'twoway-forward-url',
      'twoway-tenant',
      'twoway-service',
      'twoway-test-credential',
    ]) {
      expect(received[name], name).toBeUndefined();
    }
    expect(received.host).toBe(new URL(upstreamOrigin).host);
    expect(received.connection ?? '').not.toMatch(/x-drop-me/i);
    expect(echo.rawHeaders).toContain('X-Case-Check');
    expect(received['x-case-check']).toBe('kept');
    expect(echo.rawHeaders.filter((_, i, raw) => raw[i - 1] === 'x-multi')).toEqual(['one', 'two']);
    expect(received['content-type']).toBe('text/plain');
    expect(echo.bodyLength).toBe(5);
    expect(echo.fingerprintSha256).toBe(clientB.fingerprintSha256);
  });
});

describe('proxyRequest and underscore spellings', () => {
  it('drops the fields it consumes or drops when spelt with _ for - (CVE-2024-45614), keeps other underscores', async () => {
    // CGI-style servers (wsgiref, Puma < 6.4.3) read Twoway_Tenant as Twoway-Tenant.
    const { echo } = await forwardEcho('/echo', {
      method: 'POST',
      body: Buffer.from('hello'),
      headers: {
        Twoway_Tenant: 'tenant-2',
        TWOWAY_SERVICE: 'admin',
        Twoway_Connection: 'other-connection',
        Twoway_Identity: 'idn_other',
        'Twoway_Forward-Url': 'https://elsewhere.example/',
        Authorization_: 'kept: not a consumed name',
        Proxy_Authorization: 'Basic cHJveHk6c2VjcmV0',
        Transfer_Encoding: 'chunked',
        Content_Length: '999',
        Keep_Alive: 'timeout=99',
        X_Drop_Extra: 'dropped by option',
        X_Custom_Field: 'kept',
      },
    });
    const names = echo.rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
    for (const name of [
      'twoway_tenant',
      'twoway_service',
      'twoway_connection',
      'twoway_identity',
      'twoway_forward-url',
      'proxy_authorization',
      'transfer_encoding',
      'content_length',
      'keep_alive',
      'x_drop_extra',
    ]) {
      expect(names, name).not.toContain(name);
    }
    expect(echo.headers.authorization_).toBe('kept: not a consumed name');
    expect(echo.headers.x_custom_field).toBe('kept');
    expect(echo.bodyLength).toBe(5);
  });
});

describe('DispatcherCache with real connections', () => {
  it('reuses a few kept-alive connections for many sequential requests', async () => {
    credentials.set('keepalive', credential('t1/id-ka@1#root', clientA));
    const before = handshakes;
    for (let i = 0; i < 40; i += 1) {
      const { echo } = await forwardEcho('/echo', { credential: 'keepalive' });
      expect(echo.fingerprintSha256).toBe(clientA.fingerprintSha256);
    }
    expect(handshakes - before).toBeGreaterThanOrEqual(1);
    expect(handshakes - before).toBeLessThanOrEqual(2);
  });

  it('never shares TLS sessions between two credentials on the same origin', async () => {
    credentials.set('session-a', credential('t1/id-sa@1#root', clientA));
    credentials.set('session-b', credential('t2/id-sb@1#root', clientB));
    let resumed = 0;
    // '/close' makes the upstream close each connection, so every request handshakes again and
    // resumes a cached session if there is one: a shared cache would present A's certificate for B.
    for (let round = 0; round < 6; round += 1) {
      for (const [name, leaf] of [
        ['session-a', clientA],
        ['session-b', clientB],
      ] as const) {
        const { echo } = await forwardEcho('/close', { credential: name });
        expect(echo.fingerprintSha256, `${name} round ${round}`).toBe(leaf.fingerprintSha256);
        if (echo.sessionReused) resumed += 1;
      }
    }
    // Resumption did happen (each credential with its own sessions), so the check above meant something.
    expect(resumed).toBe(10);
  });

  it('resumes on every new connection, across garbage collections and closed origin pools', async () => {
    // undici's own session cache holds sessions by WeakRef and lives in the origin's pool, which
    // closes with its last connection: with it, none of these reconnects resumed.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    credentials.set('resume', credential('t1/id-resume@1#root', clientA));
    const reused: boolean[] = [];
    for (let i = 0; i < 6; i += 1) {
      const { echo } = await forwardEcho('/close', { credential: 'resume' });
      expect(echo.fingerprintSha256).toBe(clientA.fingerprintSha256);
      reused.push(echo.sessionReused);
      gc();
    }
    expect(reused).toEqual([false, true, true, true, true, true]);
  });

  it('drops a session whose connection failed before the handshake completed', async () => {
    const flaky = echoUpstream();
    // While set, the server drops every TCP connection before the TLS handshake.
    let dropping = false;
    flaky.on('connection', (socket: Socket) => {
      if (dropping) socket.destroy();
    });
    const port = await listen(flaky);
    credentials.set('flaky', credential('t1/id-flaky@1#root', clientA));
    const call = async (): Promise<boolean> => {
      const response = await request(frontUrl, {
        dispatcher: client,
        headers: {
          'twoway-forward-url': `https://127.0.0.1:${port}/close`,
          'twoway-test-credential': 'flaky',
        },
      });
      const text = await response.body.text();
      expect(response.statusCode, text).toBe(201);
      return (JSON.parse(text) as Echo).sessionReused;
    };
    try {
      expect([await call(), await call()]).toEqual([false, true]);
      // The same server (same ticket keys) drops the connection that offers the session.
      dropping = true;
      const refused = await request(frontUrl, {
        dispatcher: client,
        headers: {
          'twoway-forward-url': `https://127.0.0.1:${port}/close`,
          'twoway-test-credential': 'flaky',
        },
      });
      expect(refused.statusCode).toBe(502);
      await refused.body.text();
      dropping = false;
      // A kept session would resume here (the server still accepts its ticket); it was dropped.
      expect([await call(), await call()]).toEqual([false, true]);
    } finally {
      await stop(flaky);
    }
  });

  it('retire(): in-flight requests finish on the old agent, the next lease gets a new one, the old one closes', async () => {
    const rotating = credential('t1/id-rot@1#root', clientA);
    credentials.set('rotating', rotating);
    await forwardEcho('/echo', { credential: 'rotating' });
    const peek = cache.lease(rotating);
    const oldAgent = peek.dispatcher;
    peek.release();

    const slowBefore = slow.length;
    const inFlight = forward('/slow', { credential: 'rotating' });
    await waitFor(() => slow.length > slowBefore);
    const held = slow[slowBefore];
    if (held === undefined) throw new Error('slow request not seen');

    cache.retire(rotating.key);
    expect(cache.drainingCount).toBe(1);
    expect((oldAgent as unknown as { closed: boolean }).closed).toBe(false);

    const { echo } = await forwardEcho('/echo', { credential: 'rotating' });
    expect(echo.fingerprintSha256).toBe(clientA.fingerprintSha256);
    const next = cache.lease(rotating);
    expect(next.dispatcher).not.toBe(oldAgent);
    next.release();

    held.res.writeHead(200, { 'content-type': 'text/plain' }).end('slow done');
    const response = await inFlight;
    expect(response.statusCode).toBe(200);
    expect(await response.body.text()).toBe('slow done');
    await waitFor(() => (oldAgent as unknown as { destroyed: boolean }).destroyed);
    expect(cache.drainingCount).toBe(0);
  });

  it('aborts the upstream request when the client disconnects', async () => {
    const slowBefore = slow.length;
    const resultsBefore = results.length;
    const req = http.request(frontUrl, {
      agent: false,
      headers: { 'twoway-forward-url': `${upstreamOrigin}/slow`, 'twoway-test-credential': 'a' },
    });
    req.on('error', () => undefined);
    req.end();
    await waitFor(() => slow.length > slowBefore);
    req.destroy();
    await waitFor(() => slow[slowBefore]?.closed === true);
    await waitFor(() => results.length > resultsBefore);
    expect(results[resultsBefore]).toEqual({ status: 499 });
  });

  it('closes agents that stay unused for the idle TTL', async () => {
    const idle = new DispatcherCache({
      timeouts: {
        connectTimeoutMs: 1_000,
        headersTimeoutMs: 1_000,
        bodyTimeoutMs: 1_000,
        idleTimeoutMs: 1_000,
      },
      allowPrivate: true,
      idleAgentTtlMs: 50,
    });
    const closedKeys: string[] = [];
    idle.onIdleClose((key) => closedKeys.push(key));
    try {
      const lease = idle.lease(credential('t9/idle@1#root', clientA));
      const agent = lease.dispatcher as unknown as { closed: boolean };
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(agent.closed).toBe(false); // still leased
      expect(closedKeys).toEqual([]);
      lease.release();
      await waitFor(() => agent.closed, 2_000);
      expect(idle.size).toBe(0);
      expect(closedKeys).toEqual(['t9/idle@1#root']);
    } finally {
      await idle.close();
    }
  });
});
