import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { type AddressInfo, createConnection, createServer as createTcpServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS as DAY } from '../../src/certificates/index.js';
import { type CertKey, issueLeaf, makePkcs12, makePki, type TestPki } from '../fixtures/pki.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { freePort } from '../helpers/nginx.js';
import { build, buildInTest, createTenant, type TestTwoway, uploadPkcs12 } from '../helpers/twoway.js';

interface Problem {
  code: string;
  status: number;
  title: string;
  detail: string;
  type: string;
}

describe('bad input gets its documented code and changes nothing', () => {
  let pki: TestPki;
  const twoway = build({
    env: { TWOWAY_FORWARD_CONNECT_TIMEOUT_MS: '1000', TWOWAY_FORWARD_HEADERS_TIMEOUT_MS: '800' },
  });
  const strict = build({ env: { TWOWAY_FORWARD_ALLOW_PRIVATE: 'false' } });
  let upstream: MtlsServer;
  let good: CertKey;
  let silent: import('node:net').Server;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    for (const t of [twoway, strict]) await createTenant(t, 'acme', 'Acme');
    good = await pki.leaf({ cn: 'good', key: 'ec256' });
    // A TCP server that accepts and never answers: the TLS handshake never completes.
    silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    silent?.close();
    await upstream?.close();
  });

  async function expectUnchanged<T>(t: TestTwoway, work: () => Promise<T>): Promise<T> {
    const revision = await t.store.getRevision();
    const identities = (await t.store.listIdentities('acme', { limit: 1000 })).items;
    const result = await work();
    expect(await t.store.getRevision()).toBe(revision);
    expect((await t.store.listIdentities('acme', { limit: 1000 })).items).toEqual(identities);
    return result;
  }

  async function expectProblem(response: Response, status: number, code: string): Promise<Problem> {
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = (await response.json()) as Problem;
    expect({ status: response.status, code: problem.code }).toEqual({ status, code });
    expect(problem.type).toBe(`/docs/errors#${code}`);
    return problem;
  }

  function pemUpload(body: Record<string, string>): Promise<Response> {
    return twoway.call('/v1/tenants/acme/identities', { method: 'POST', json: { name: 'bad', ...body } });
  }

  test('PKCS#12 uploads: wrong password, truncated, random bytes, too large', async () => {
    const p12 = makePkcs12(good, [pki.intermediate], 'right');
    await expectUnchanged(twoway, async () => {
      const wrong = await expectProblem(
        await uploadPkcs12(twoway, 'acme', p12, 'wrong'),
        422,
        'bad_password',
      );
      expect(wrong.detail).not.toContain('wrong');
      await expectProblem(
        await uploadPkcs12(twoway, 'acme', p12.subarray(0, p12.length >> 1), 'right'),
        422,
        'unsupported_format',
      );
      await expectProblem(
        await uploadPkcs12(twoway, 'acme', randomBytes(4096), 'right'),
        422,
        'unsupported_format',
      );
      await expectProblem(
        await uploadPkcs12(twoway, 'acme', randomBytes(10 * 1024 * 1024), 'right'),
        413,
        'payload_too_large',
      );
      const json = await twoway.call('/v1/tenants/acme/identities', {
        method: 'POST',
        json: { name: 'big', pkcs12: randomBytes(10 * 1024 * 1024).toString('base64'), password: 'x' },
      });
      await expectProblem(json, 413, 'payload_too_large');
      await expectProblem(
        await pemUpload({
          certificatePem: '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n',
        }),
        422,
        'unsupported_format',
      );
    });
  });

  test('PEM uploads: every certificate check gives its code', async () => {
    const other = await pki.leaf({ cn: 'other' });
    const expired = await pki.leaf({
      cn: 'expired',
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - DAY),
    });
    const future = await pki.leaf({
      cn: 'future',
      notBefore: new Date(Date.now() + DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
    });
    const rsa1024 = await pki.leaf({ cn: 'weak', key: 'rsa1024' });
    const sha1 = await pki.leaf({ cn: 'sha1', key: 'rsa2048', hash: 'SHA-1' });
    const serverOnly = await pki.leaf({ cn: 'server-only', eku: 'serverAuth' });
    const strangerRoot = await issueLeaf('self', { cn: 'stranger', eku: 'none' });
    const cases: [string, Record<string, string>, number, string][] = [
      [
        'key of another certificate',
        { certificatePem: good.certPem, privateKeyPem: other.keyPem },
        422,
        'key_mismatch',
      ],
      [
        'expired leaf',
        { certificatePem: expired.certPem, privateKeyPem: expired.keyPem },
        422,
        'certificate_expired',
      ],
      [
        'future leaf',
        { certificatePem: future.certPem, privateKeyPem: future.keyPem },
        422,
        'certificate_not_yet_valid',
      ],
      ['RSA-1024', { certificatePem: rsa1024.certPem, privateKeyPem: rsa1024.keyPem }, 422, 'weak_key'],
      ['SHA-1 leaf', { certificatePem: sha1.certPem, privateKeyPem: sha1.keyPem }, 422, 'weak_signature'],
      [
        'serverAuth-only EKU',
        { certificatePem: serverOnly.certPem, privateKeyPem: serverOnly.keyPem },
        422,
        'client_auth_not_allowed',
      ],
      ['no key', { certificatePem: good.certPem }, 422, 'no_private_key'],
      ['no certificate', { privateKeyPem: good.keyPem }, 422, 'no_certificate'],
      [
        'two keys',
        { certificatePem: good.certPem, privateKeyPem: good.keyPem + other.keyPem },
        422,
        'multiple_private_keys',
      ],
      [
        'chain with a stranger',
        {
          certificatePem: good.certPem,
          privateKeyPem: good.keyPem,
          chainPem: pki.intermediate.certPem + strangerRoot.certPem,
        },
        422,
        'chain_mismatch',
      ],
      [
        'chain missing its intermediate',
        { certificatePem: good.certPem, privateKeyPem: good.keyPem, chainPem: pki.root.certPem },
        422,
        'chain_mismatch',
      ],
    ];
    await expectUnchanged(twoway, async () => {
      for (const [, body, status, code] of cases) await expectProblem(await pemUpload(body), status, code);
    });
  });

  test('a shuffled chain with its root is reordered and the root dropped', async () => {
    const response = await pemUpload({
      certificatePem: good.certPem,
      privateKeyPem: good.keyPem,
      chainPem: pki.root.certPem + pki.intermediate.certPem,
    });
    expect(response.status).toBe(201);
    const identity = (await response.json()) as { versions: { chain: { fingerprintSha256: string }[] }[] };
    expect(identity.versions[0]?.chain.map((c) => c.fingerprintSha256)).toEqual([
      pki.intermediate.fingerprintSha256,
    ]);
  });

  async function mapTo(t: TestTwoway, url: string, trust = true): Promise<void> {
    const uploaded = await t.call('/v1/tenants/acme/identities', {
      method: 'POST',
      json: {
        name: 'fwd',
        certificatePem: good.certPem,
        privateKeyPem: good.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    const { id } = (await uploaded.json()) as { id: string };
    const mapped = await t.call('/v1/tenants/acme/mappings', {
      method: 'POST',
      json: {
        name: url,
        service: 'api',
        url,
        match: 'prefix',
        identityId: id,
        ...(trust ? { trustAnchorsPem: pki.root.certPem } : {}),
      },
    });
    expect(mapped.status).toBe(201);
  }

  function forward(t: TestTwoway, url: string): Promise<Response> {
    return fetch(`${t.url}/v1/runtime/forward`, {
      headers: {
        authorization: 'Bearer test-operator-token-0123456789',
        'twoway-tenant': 'acme',
        'twoway-service': 'api',
        'twoway-forward-url': url,
      },
    });
  }

  async function expectGatewayError(response: Response, status: number, code: string): Promise<void> {
    expect(response.headers.get('twoway-error')).toBe(code);
    await expectProblem(response, status, code);
  }

  test('forward refusals and upstream failures carry Twoway-Error', async () => {
    const closedPort = await freePort();
    const silentPort = (silent.address() as AddressInfo).port;
    await mapTo(twoway, `${upstream.url}/trusted/`);
    await mapTo(twoway, `${upstream.url}/untrusted/`, false);
    await mapTo(twoway, `https://127.0.0.1:${closedPort}/`);
    await mapTo(twoway, `https://127.0.0.1:${silentPort}/`);

    expect((await forward(twoway, `${upstream.url}/trusted/x`)).status).toBe(200);
    await expectGatewayError(await forward(twoway, `${upstream.url}/unmapped`), 403, 'no_mapping');
    await expectGatewayError(await forward(twoway, 'http://example.com/'), 400, 'forward_url_invalid');
    await expectGatewayError(await forward(twoway, 'not a url'), 400, 'forward_url_invalid');
    await expectGatewayError(
      await forward(twoway, `${upstream.url}/untrusted/x`),
      502,
      'upstream_tls_failed',
    );
    await expectGatewayError(
      await forward(twoway, `https://127.0.0.1:${closedPort}/x`),
      502,
      'upstream_unreachable',
    );
    await expectGatewayError(
      await forward(twoway, `https://127.0.0.1:${silentPort}/x`),
      504,
      'upstream_timeout',
    );
  });

  /** A raw request (repeated fields stay repeated, unlike fetch's Headers); resolves status + body. */
  function rawForward(
    t: TestTwoway,
    path: string,
    headers: Record<string, string | string[]>,
    method = 'GET',
  ): Promise<{ status: number; error: string | undefined; body: Problem }> {
    return new Promise((resolve, reject) => {
      const request = httpRequest(`${t.url}${path}`, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            error: res.headers['twoway-error'] as string | undefined,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Problem,
          }),
        );
      });
      request.on('error', reject);
      request.end(method === 'POST' ? 'unread body' : undefined);
    });
  }

  // The listener answers /v1/runtime/forward itself (forward/endpoint.ts); a percent-escaped path
  // reaches the same handler through Fastify's router. Both must refuse alike.
  test.each([
    ['the listener', '/v1/runtime/forward?x=1'],
    ['the router', '/v1/runtime/%66orward'],
  ])('forward fields are checked the same way through %s', async (_via, path) => {
    await mapTo(twoway, `${upstream.url}/fields/`);
    const operator = 'Bearer test-operator-token-0123456789';
    const url = `${upstream.url}/fields/x`;
    const base = { 'twoway-tenant': 'acme', 'twoway-service': 'api', 'twoway-forward-url': url };
    const cases: [Record<string, string | string[]>, number, string][] = [
      [base, 401, 'unauthorized'],
      [{ ...base, authorization: 'Bearer tw_nope' }, 401, 'unauthorized'],
      // The token first on both paths (Fastify's auth hook runs before the route reads any field).
      [{ ...base, authorization: 'Bearer tw_nope', 'twoway-service': ['api', 'api'] }, 401, 'unauthorized'],
      [{ ...base, authorization: operator, 'twoway-tenant': '' }, 400, 'bad_request'],
      [{ ...base, authorization: operator, 'twoway-service': ['api', 'other'] }, 400, 'bad_request'],
      [{ ...base, authorization: operator, 'twoway-forward-url': [url, url] }, 400, 'bad_request'],
      [{ ...base, authorization: operator, 'twoway-service': '' }, 400, 'bad_request'],
      [{ ...base, authorization: operator, 'twoway-forward-url': 'ftp://x/' }, 400, 'forward_url_invalid'],
    ];
    for (const [headers, status, code] of cases) {
      const answer = await rawForward(twoway, path, headers);
      expect({ status: answer.status, error: answer.error, code: answer.body.code }).toEqual({
        status,
        error: code,
        code,
      });
    }
    // A refused POST is answered too, and a request after it works.
    const refused = await rawForward(twoway, path, { ...base, authorization: 'Bearer tw_nope' }, 'POST');
    expect(refused.status).toBe(401);
    const ok = await rawForward(twoway, path, { ...base, authorization: operator });
    expect(ok.status).toBe(200);
    expect(ok.error).toBeUndefined();
  });

  test('without the allow flag, loopback is blocked before and after DNS', async () => {
    const port = upstream.port;
    await mapTo(strict, `https://127.0.0.1:${port}/`);
    await mapTo(strict, `https://localhost:${port}/`);
    const handshakes = upstream.handshakes();
    await expectGatewayError(
      await forward(strict, `https://127.0.0.1:${port}/x`),
      403,
      'forward_destination_blocked',
    );
    await expectGatewayError(
      await forward(strict, `https://localhost:${port}/x`),
      403,
      'forward_destination_blocked',
    );
    await expectGatewayError(
      await forward(strict, 'https://169.254.169.254/latest/meta-data/'),
      403,
      'forward_destination_blocked',
    );
    expect(upstream.handshakes()).toBe(handshakes);
  });

  test('a PKCS#12 file heavy on key derivation is read off the event loop: other requests go on meanwhile', async () => {
    // 1,500,000 PBKDF2 rounds for each of the two bags: about a second or more of CPU, within limits.
    const heavy = makePkcs12(good, [pki.intermediate], 'pw', { iterations: 1_500_000 });
    const order: string[] = [];
    const upload = uploadPkcs12(twoway, 'acme', heavy, 'pw').then((response) => {
      order.push(`upload ${response.status}`);
    });
    // Requests sent while the file is being read are answered before it is done.
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (let i = 0; i < 3; i += 1) {
      const health = await fetch(`${twoway.url}/healthz`);
      order.push(`healthz ${health.status}`);
    }
    await upload;
    expect(order).toEqual(['healthz 200', 'healthz 200', 'healthz 200', 'upload 201']);
  });

  test('an authenticated forward whose body stops coming is closed after TWOWAY_HTTP_IDLE_TIMEOUT_MS', async () => {
    const idle = await buildInTest({
      env: {
        TWOWAY_FORWARD_HEADERS_TIMEOUT_MS: '500',
        TWOWAY_FORWARD_BODY_TIMEOUT_MS: '500',
        TWOWAY_HTTP_IDLE_TIMEOUT_MS: '1500',
      },
    });
    await createTenant(idle, 'acme', 'Acme');
    await mapTo(idle, `${upstream.url}/trusted/`);
    const socket = createConnection({ host: '127.0.0.1', port: Number(new URL(idle.url).port) });
    sockets.push(socket);
    await once(socket, 'connect');
    // A valid forward that announces a megabyte, sends ten bytes and then nothing.
    socket.write(
      [
        'POST /v1/runtime/forward HTTP/1.1',
        'Host: x',
        'Authorization: Bearer test-operator-token-0123456789',
        'Twoway-Tenant: acme',
        'Twoway-Service: api',
        `Twoway-Forward-Url: ${upstream.url}/trusted/upload`,
        'Content-Length: 1000000',
        '',
        '0123456789',
      ].join('\r\n'),
    );
    socket.resume();
    // undici does not time the upload of a request body; the listener's idle timeout ends it.
    await once(socket, 'close');
  });

  test('an answer sent before the body arrived closes the connection (no body trickled on for ever)', async () => {
    const { port } = new URL(twoway.url);
    for (const [target, auth] of [
      ['/v1/tenants/acme/identities', ''], // refused by the auth hook, body not read
      ['/v1/nowhere', 'Authorization: Bearer tw_nope\r\n'], // no such route
      ['/v1/runtime/%66orward', ''], // the forward route through Fastify
    ] as const) {
      const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
      sockets.push(socket);
      await once(socket, 'connect');
      // Announces a megabyte, sends ten bytes, and never more.
      socket.write(
        `POST ${target} HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n0123456789`,
      );
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        answer += chunk;
      });
      // The server ends the connection after its answer.
      await once(socket, 'end');
      expect(answer, target).toMatch(/^HTTP\/1\.1 40[14] /);
      expect(answer.toLowerCase(), target).toContain('connection: close');
    }
  });

  test('auth: no token, a wrong token and another tenant are refused', async () => {
    await expectProblem(
      await twoway.call('/v1/tenants/acme/identities', { token: null }),
      401,
      'unauthorized',
    );
    await expectProblem(
      await twoway.call('/v1/tenants/acme/identities', { token: 'tw_nope' }),
      401,
      'unauthorized',
    );
    await expectProblem(await twoway.call('/v1/tenants/nobody/identities'), 404, 'not_found');
    await expectProblem(
      await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'acme', name: 'again' } }),
      409,
      'tenant_exists',
    );
    await expectProblem(
      await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'A!', name: 'x' } }),
      400,
      'bad_request',
    );
  });
});
