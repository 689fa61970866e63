import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS, fingerprintSha256 } from '../../src/certificates/index.js';
import { makePki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import {
  curl,
  makeByoc,
  makeCsr,
  openssl,
  RawEdgeConnection,
  rawHeaderValues,
  run,
  startPlatformUpstream,
  type UpstreamRequest,
  writeFile,
} from '../helpers/edge-clients.js';
import { ALERT_DECRYPT_ERROR, tls13Exchange } from '../helpers/edge-tls13-client.js';
import { finalResponse, serveRawHttp } from '../helpers/raw-upstream.js';
import {
  build,
  buildInTest,
  createTenant,
  logLines,
  OPERATOR_TOKEN,
  startTestTwoway,
  type TestTwoway,
} from '../helpers/twoway.js';

const backends = await appBackends();

/** A clock the test can move: the edge checks validity against it. */
const clock = { offsetMs: 0, now: () => new Date(Date.now() + clock.offsetMs) };

function fingerprintOf(pemFile: string): string {
  return fingerprintSha256(new X509Certificate(readFileSync(pemFile)));
}

/** Tenant `id` with its API key and a BYOC certificate (`<id>-client`) registered through the API. */
async function tenantWithByoc(
  twoway: TestTwoway,
  dir: string,
  id: string,
): Promise<{ apiKey: string; cert: string; key: string }> {
  const created = await twoway.call('/v1/tenants', { method: 'POST', json: { id, name: id } });
  const { apiKey } = (await created.json()) as { apiKey: string };
  const made = await makeByoc(dir, id, `${id}-client`);
  const registered = await twoway.call(`/v1/tenants/${id}/client-certificates`, {
    method: 'POST',
    token: apiKey,
    json: { certificatePem: readFileSync(made.cert, 'utf8') },
  });
  expect(registered.status).toBe(201);
  return { apiKey, ...made };
}

describe.each(backends)('edge listener (inbound mTLS) on $name', (backend) => {
  const files = tempDir('twoway-edge-');
  let upstream: Awaited<ReturnType<typeof startPlatformUpstream>>;
  let keyA: string;
  let keyB: string;
  let caFile: string;
  /** tenant-a's BYOC certificate, registered by `curl -F file=@...` as the README tells tenants. */
  let byoc: { cert: string; key: string; id: string };
  /** tenant-a's certificate issued from an `openssl req -new` CSR. */
  let issued: { cert: string; key: string; id: string };

  const hello = (tenant = 'tenant-a') => `${twoway.edgeUrl}/v1/tenants/${tenant}/mtls/hello`;

  async function register(
    cert: string,
    apiKey: string,
    tenant = 'tenant-a',
  ): Promise<{ status: number; id: string }> {
    const result = await run('curl', [
      '-sS',
      '-H',
      `Authorization: Bearer ${apiKey}`,
      '-F',
      `file=@${cert}`,
      '-F',
      'name=laptop',
      `${twoway.url}/v1/tenants/${tenant}/client-certificates`,
      '-w',
      '\n%{http_code}',
    ]);
    const lines = result.stdout.trim().split('\n');
    const status = Number(lines.pop());
    return { status, id: status === 201 ? (JSON.parse(lines.join('\n')) as { id: string }).id : '' };
  }

  const twoway = build({
    backend,
    clock,
    // The platform upstream starts first: its URL is part of the configuration.
    env: async () => {
      upstream = await startPlatformUpstream();
      return { TWOWAY_EDGE_UPSTREAM: upstream.url };
    },
  });

  beforeAll(async () => {
    keyA = await createTenant(twoway, 'tenant-a', 'A');
    keyB = await createTenant(twoway, 'tenant-b', 'B');
    // Public material: no token needed.
    const chain = await fetch(`${twoway.url}/v1/ca/certificates`);
    expect(chain.status).toBe(200);
    caFile = writeFile(files.dir, 'ca.pem', await chain.text());

    const made = await makeByoc(files.dir, 'byoc', 'tenant-a-laptop');
    const registered = await register(made.cert, keyA);
    expect(registered.status).toBe(201);
    byoc = { ...made, id: registered.id };

    const csr = await makeCsr(files.dir, 'issued', '/O=Tenant A/CN=tenant-a-service');
    const signed = await twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
      method: 'POST',
      token: keyA,
      json: { name: 'service', csrPem: readFileSync(csr.csr, 'utf8') },
    });
    expect(signed.status).toBe(201);
    const body = (await signed.json()) as { id: string; certificatePem: string; chainPem: string };
    issued = { cert: writeFile(files.dir, 'issued.crt', body.certificatePem), key: csr.key, id: body.id };
  });

  afterAll(async () => {
    await upstream?.close();
    files.cleanup();
  });

  test('curl with a self-signed certificate made by openssl req -x509 (RSA 2048, SHA-256, 365 days) gets Hello, world!', async () => {
    const text = await openssl(files.dir, 'x509', '-in', byoc.cert, '-noout', '-text');
    expect(text).toMatch(/Public-Key: \(2048 bit\)/);
    expect(text).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    const answer = await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain/);
    expect(answer.body).toBe('Hello, world!');
  });

  test('curl with a certificate issued from an openssl req -new CSR gets Hello, world!', async () => {
    const answer = await curl(hello(), { ca: caFile, cert: issued.cert, key: issued.key, apiKey: keyA });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('Hello, world!');
  });

  test('no client certificate is refused with 401 client_certificate_required', async () => {
    const answer = await curl(hello(), { ca: caFile, apiKey: keyA });
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'client_certificate_required' });
    expect(answer.headers.connection).toBe('close');
  });

  test('an unregistered certificate is refused with 403 client_certificate_unknown', async () => {
    const stranger = await makeByoc(files.dir, 'stranger', 'not-registered');
    const answer = await curl(hello(), { ca: caFile, cert: stranger.cert, key: stranger.key, apiKey: keyA });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'client_certificate_unknown' });
  });

  test('a certificate past notAfter is refused with 403 client_certificate_expired', async () => {
    clock.offsetMs = 400 * DAY_MS;
    try {
      const answer = await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA });
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'client_certificate_expired' });
    } finally {
      clock.offsetMs = 0;
    }
    expect((await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA })).status).toBe(
      200,
    );
  });

  test("tenant A's certificate with tenant B's API key is refused; so are a missing key and the operator token", async () => {
    const withB = await curl(hello('tenant-a'), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyB });
    expect(withB.status).toBe(403);
    expect(JSON.parse(withB.body)).toMatchObject({ code: 'client_certificate_tenant_mismatch' });
    const bPath = await curl(hello('tenant-b'), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyB });
    expect(JSON.parse(bPath.body)).toMatchObject({ code: 'client_certificate_tenant_mismatch' });
    // The right key but the other tenant's path: like every other tenant-scoped route, 404.
    const otherPath = await curl(hello('tenant-b'), {
      ca: caFile,
      cert: byoc.cert,
      key: byoc.key,
      apiKey: keyA,
    });
    expect(otherPath.status).toBe(404);
    const operator = await curl(hello(), {
      ca: caFile,
      cert: byoc.cert,
      key: byoc.key,
      apiKey: OPERATOR_TOKEN,
    });
    expect(JSON.parse(operator.body)).toMatchObject({ code: 'client_certificate_tenant_mismatch' });
    const none = await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ code: 'unauthorized' });
  });

  test('the right certificate with the wrong private key fails the handshake', async () => {
    // OpenSSL itself will not even try: the key does not match the certificate.
    const otherKey = writeFile(
      files.dir,
      'other.key',
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }),
    );
    const url = new URL(twoway.edgeUrl);
    const sClient = await run(
      'openssl',
      [
        's_client',
        '-connect',
        `${url.hostname}:${url.port}`,
        '-cert',
        issued.cert,
        '-key',
        otherKey,
        '-CAfile',
        caFile,
      ],
      { input: '' },
    );
    expect(sClient.code).not.toBe(0);
    expect(sClient.stderr + sClient.stdout).toMatch(/key values mismatch|private key does not match/i);

    // A client that does send the registered certificate and signs CertificateVerify with another
    // key (a hand-written TLS 1.3 client): the edge ends the handshake with decrypt_error and
    // nothing is answered. The same client with the certificate's own key gets the hello.
    const der = new X509Certificate(readFileSync(issued.cert)).raw;
    const request = `GET /v1/tenants/tenant-a/mtls/hello HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${keyA}\r\n\r\n`;
    const exchange = (
      signingKey: Parameters<typeof tls13Exchange>[0]['signingKey'],
      ca = readFileSync(caFile, 'utf8'),
    ) =>
      tls13Exchange({
        host: url.hostname,
        port: Number(url.port),
        serverName: 'localhost',
        certificateDer: der,
        signingKey,
        request,
        ca,
      });
    const forged = await exchange(createPrivateKey(readFileSync(otherKey)));
    expect(forged).toMatchObject({ kind: 'alert', description: ALERT_DECRYPT_ERROR });
    const genuine = await exchange(createPrivateKey(readFileSync(issued.key)));
    // The hand-written client verifies the edge like any client: an untrusted root is refused.
    await expect(
      exchange(createPrivateKey(readFileSync(issued.key)), readFileSync(byoc.cert, 'utf8')),
    ).rejects.toThrow(/does not chain to a trusted root/);
    expect(genuine.kind).toBe('response');
    expect(genuine.kind === 'response' && genuine.text).toMatch(
      /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nHello, world!$/,
    );
  });

  test('proxied requests reach the upstream with the verified identity headers, byte-exact; forged copies are dropped', async () => {
    const before = upstream.requests.length;
    const answer = await curl(`${twoway.edgeUrl}/api/orders?limit=2`, {
      ca: caFile,
      cert: issued.cert,
      key: issued.key,
      apiKey: keyA,
      method: 'POST',
      headers: [
        'X-Forwarded-Client-Cert: Hash=0000;Subject="CN=admin";URI=urn:twoway:tenant:tenant-b',
        'Client-Cert: :Zm9yZ2Vk:',
        'Client-Cert-Chain: :Zm9yZ2Vk:',
        'Twoway-Tenant: tenant-b',
        'Content-Type: application/json',
        'X-Custom: kept',
      ],
    });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-platform']).toBe('yes');
    expect(upstream.requests.length).toBe(before + 1);
    const seen = upstream.requests.at(-1) as UpstreamRequest;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/api/orders?limit=2');

    const cert = new X509Certificate(readFileSync(issued.cert));
    const fingerprint = fingerprintOf(issued.cert);
    expect(rawHeaderValues(seen.rawHeaders, 'twoway-tenant')).toEqual(['tenant-a']);
    expect(rawHeaderValues(seen.rawHeaders, 'x-forwarded-client-cert')).toEqual([
      `Hash=${fingerprint};Subject="CN=tenant-a-service,O=Tenant A";URI=urn:twoway:tenant:tenant-a`,
    ]);
    expect(rawHeaderValues(seen.rawHeaders, 'client-cert')).toEqual([`:${cert.raw.toString('base64')}:`]);
    // Issued by the platform CA: the issuing CA validates it (the root, a trust anchor, is left out).
    const issuingCa = new X509Certificate(readFileSync(caFile)); // the first certificate: issuing CA
    expect(cert.checkIssued(issuingCa)).toBe(true);
    expect(rawHeaderValues(seen.rawHeaders, 'client-cert-chain')).toEqual([
      `:${issuingCa.raw.toString('base64')}:`,
    ]);
    expect(rawHeaderValues(seen.rawHeaders, 'authorization')).toEqual([]);
    expect(rawHeaderValues(seen.rawHeaders, 'x-custom')).toEqual(['kept']);

    // A BYOC certificate has no SAN: Hash and Subject only.
    await curl(`${twoway.edgeUrl}/api/me`, { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA });
    const byocSeen = upstream.requests.at(-1) as UpstreamRequest;
    expect(rawHeaderValues(byocSeen.rawHeaders, 'x-forwarded-client-cert')).toEqual([
      `Hash=${fingerprintOf(byoc.cert)};Subject="CN=tenant-a-laptop"`,
    ]);
    // Pinned by its fingerprint, not validated through a chain: no Client-Cert-Chain.
    expect(rawHeaderValues(byocSeen.rawHeaders, 'client-cert-chain')).toEqual([]);
  });

  test('identity headers spelt with underscores are dropped, not forwarded (CVE-2024-45614), over HTTP/1.1 and from an h2 client', async () => {
    // A CGI-style platform (wsgiref, Puma < 6.4.3) reads Twoway_Tenant as Twoway-Tenant: tenant B's
    // client could make it read tenant A's identity.
    const forged = [
      'Twoway_Tenant: tenant-a',
      'X_Forwarded_Client_Cert: Hash=0000;Subject="CN=admin";URI=urn:twoway:tenant:tenant-a',
      'x-forwarded_client-cert: Hash=1111',
      'Client_Cert: :Zm9yZ2Vk:',
      'CLIENT_CERT_CHAIN: :Zm9yZ2Vk:',
      'Twoway_Anything: x',
      'X_Custom_Header: kept',
    ];
    const laptop = await makeByoc(files.dir, 'underscore-b', 'tenant-b-laptop');
    expect((await register(laptop.cert, keyB, 'tenant-b')).status).toBe(201);
    for (const http2 of [false, true]) {
      const before = upstream.requests.length;
      const answer = await curl(`${twoway.edgeUrl}/api/whoami`, {
        ca: caFile,
        cert: laptop.cert,
        key: laptop.key,
        apiKey: keyB,
        headers: forged,
        http2,
      });
      expect(answer.status).toBe(200);
      expect(upstream.requests.length).toBe(before + 1);
      const seen = (upstream.requests.at(-1) as UpstreamRequest).rawHeaders;
      const names = seen.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase());
      const folded = names.map((name) => name.replaceAll('_', '-'));
      expect(folded.filter((name) => name === 'twoway-tenant')).toHaveLength(1);
      expect(rawHeaderValues(seen, 'twoway-tenant')).toEqual(['tenant-b']);
      expect(folded.filter((name) => name === 'x-forwarded-client-cert')).toHaveLength(1);
      expect(rawHeaderValues(seen, 'x-forwarded-client-cert')[0]).toMatch(
        new RegExp(`^Hash=${fingerprintOf(laptop.cert)};`),
      );
      expect(folded.filter((name) => name === 'client-cert')).toHaveLength(1);
      expect(folded.filter((name) => name === 'client-cert-chain')).toHaveLength(0);
      expect(names).not.toContain('twoway_anything');
      // Underscores as such are fine: only the spellings of fields the edge sets are dropped.
      expect(rawHeaderValues(seen, 'x_custom_header')).toEqual(['kept']);
    }
  });

  test('with a base path in TWOWAY_EDGE_UPSTREAM, a request path cannot climb out of it', async () => {
    const based = await buildInTest({ backend, env: { TWOWAY_EDGE_UPSTREAM: `${upstream.url}/platform` } });
    const apiKey = await createTenant(based, 'based', 'B');
    const cert = readFileSync(byoc.cert, 'utf8');
    const added = await based.call('/v1/tenants/based/client-certificates', {
      method: 'POST',
      json: { name: 'byoc', certificatePem: cert },
    });
    expect(added.status).toBe(201);
    const chain = writeFile(
      files.dir,
      'based-ca.pem',
      await (await fetch(`${based.url}/v1/ca/certificates`)).text(),
    );
    const get = (path: string) =>
      curl(`${based.edgeUrl}${path}`, {
        ca: chain,
        cert: byoc.cert,
        key: byoc.key,
        apiKey,
        pathAsIs: true,
      });
    const before = upstream.requests.length;
    for (const path of [
      '/../admin',
      '/api/../../admin',
      '/%2e%2e/admin',
      '/api/%2E%2E/%2e%2e/admin?x=1',
      // Climbs out only for a platform server that decodes %2F or strips ;parameters.
      '/..%2Fadmin',
      '/..;/admin',
      '/api/..%2f..%2fadmin',
    ]) {
      const refused = await get(path);
      expect(refused.status, path).toBe(400);
      expect(refused.headers['twoway-error'], path).toBe('bad_request');
    }
    expect(upstream.requests.length).toBe(before);
    // Dot segments that stay inside the base path are resolved and sent.
    expect((await get('/api/../orders')).status).toBe(200);
    expect(upstream.requests.at(-1)?.url).toBe('/platform/orders');
    expect((await get('/api/orders?limit=1')).status).toBe(200);
    expect(upstream.requests.at(-1)?.url).toBe('/platform/api/orders?limit=1');
  });

  test('revocation refuses new handshakes and the next request on an already open keep-alive connection', async () => {
    const csr = await makeCsr(files.dir, 'revoked', '/CN=tenant-a-revoked');
    const signed = await twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
      method: 'POST',
      token: keyA,
      json: { name: 'to revoke', csrPem: readFileSync(csr.csr, 'utf8') },
    });
    const { id, certificatePem } = (await signed.json()) as { id: string; certificatePem: string };
    const certFile = writeFile(files.dir, 'revoked.crt', certificatePem);

    const connection = await RawEdgeConnection.connect(twoway.edgeUrl, {
      ca: readFileSync(caFile, 'utf8'),
      cert: certificatePem,
      key: readFileSync(csr.key, 'utf8'),
    });
    try {
      expect((await connection.get('/v1/tenants/tenant-a/mtls/hello', keyA)).body).toBe('Hello, world!');
      expect((await connection.get('/v1/tenants/tenant-a/mtls/hello', keyA)).status).toBe(200);

      const revoked = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${id}/revoke`, {
        method: 'POST',
        token: keyA,
        json: { reason: 'keyCompromise' },
      });
      expect(revoked.status).toBe(200);
      expect(((await revoked.json()) as { status: string }).status).toBe('revoked');

      // Same TLS connection, next request: refused, and the connection is closed after it.
      const refused = await connection.get('/v1/tenants/tenant-a/mtls/hello', keyA);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'client_certificate_revoked' });
      expect(refused.headers.connection).toBe('close');
    } finally {
      connection.close();
    }
    const fresh = await curl(hello(), { ca: caFile, cert: certFile, key: csr.key, apiKey: keyA });
    expect(fresh.status).toBe(403);
    expect(JSON.parse(fresh.body)).toMatchObject({ code: 'client_certificate_revoked' });
  });

  test('deletion and registration take effect for the next handshake at once', async () => {
    const laptop = await makeByoc(files.dir, 'laptop2', 'tenant-a-laptop-2');
    const first = await register(laptop.cert, keyA);
    expect(first.status).toBe(201);
    expect(
      (await curl(hello(), { ca: caFile, cert: laptop.cert, key: laptop.key, apiKey: keyA })).status,
    ).toBe(200);
    const deleted = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${first.id}`, {
      method: 'DELETE',
      token: keyA,
    });
    expect(deleted.status).toBe(204);
    const gone = await curl(hello(), { ca: caFile, cert: laptop.cert, key: laptop.key, apiKey: keyA });
    expect(JSON.parse(gone.body)).toMatchObject({ code: 'client_certificate_unknown' });
    // Registered again, now by tenant B: admitted at once, for tenant B only.
    expect((await register(laptop.cert, keyB, 'tenant-b')).status).toBe(201);
    expect(
      (await curl(hello('tenant-b'), { ca: caFile, cert: laptop.cert, key: laptop.key, apiKey: keyB })).body,
    ).toBe('Hello, world!');
    const asA = await curl(hello(), { ca: caFile, cert: laptop.cert, key: laptop.key, apiKey: keyA });
    expect(JSON.parse(asA.body)).toMatchObject({ code: 'client_certificate_tenant_mismatch' });
  });

  test('two tenants register the same public certificate: each key is admitted for its own tenant, a third is not, and one revocation leaves the other', async () => {
    const created = await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'tenant-c', name: 'C' } });
    const keyC = ((await created.json()) as { apiKey: string }).apiKey;
    const shared = await makeByoc(files.dir, 'shared', 'shared-client');
    const asA = await register(shared.cert, keyA);
    expect(asA.status).toBe(201);
    // No first-come lock-out and no oracle: tenant B registers it too, and nobody is told.
    const asB = await register(shared.cert, keyB, 'tenant-b');
    expect(asB.status).toBe(201);
    // The same tenant twice stays a conflict.
    expect((await register(shared.cert, keyB, 'tenant-b')).status).toBe(409);

    const get = (tenant: string, apiKey: string) =>
      curl(hello(tenant), { ca: caFile, cert: shared.cert, key: shared.key, apiKey });
    expect((await get('tenant-a', keyA)).body).toBe('Hello, world!');
    expect((await get('tenant-b', keyB)).body).toBe('Hello, world!');
    const asC = await get('tenant-c', keyC);
    expect(asC.status).toBe(403);
    expect(JSON.parse(asC.body)).toMatchObject({ code: 'client_certificate_tenant_mismatch' });

    // One keep-alive connection, the API key changing between requests: each request is checked
    // against the registration of its key's tenant.
    const connection = await RawEdgeConnection.connect(twoway.edgeUrl, {
      ca: readFileSync(caFile, 'utf8'),
      cert: readFileSync(shared.cert, 'utf8'),
      key: readFileSync(shared.key, 'utf8'),
    });
    try {
      expect((await connection.get('/v1/tenants/tenant-a/mtls/hello', keyA)).status).toBe(200);
      expect((await connection.get('/v1/tenants/tenant-b/mtls/hello', keyB)).status).toBe(200);
      const revoked = await twoway.call(`/v1/tenants/tenant-b/client-certificates/${asB.id}/revoke`, {
        method: 'POST',
        token: keyB,
        json: {},
      });
      expect(revoked.status).toBe(200);
      expect((await connection.get('/v1/tenants/tenant-a/mtls/hello', keyA)).status).toBe(200);
      const refused = await connection.get('/v1/tenants/tenant-b/mtls/hello', keyB);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'client_certificate_revoked' });
    } finally {
      connection.close();
    }
    expect((await get('tenant-a', keyA)).body).toBe('Hello, world!');
    expect(JSON.parse((await get('tenant-b', keyB)).body)).toMatchObject({
      code: 'client_certificate_revoked',
    });
    // Deleted by A: B's (revoked) registration still answers for B, A is now a stranger to it.
    const deleted = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${asA.id}`, {
      method: 'DELETE',
      token: keyA,
    });
    expect(deleted.status).toBe(204);
    expect(JSON.parse((await get('tenant-a', keyA)).body)).toMatchObject({
      code: 'client_certificate_tenant_mismatch',
    });
    expect(JSON.parse((await get('tenant-b', keyB)).body)).toMatchObject({
      code: 'client_certificate_revoked',
    });
  });

  test('metrics count edge handshakes by certificate and requests by outcome', async () => {
    const read = async () => {
      const text = await (await twoway.call('/metrics')).text();
      const value = (series: string) =>
        Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return {
        ok: value('twoway_edge_requests_total{outcome="ok"}'),
        required: value('twoway_edge_requests_total{outcome="client_certificate_required"}'),
        withCertificate: value('twoway_edge_handshakes_total{certificate="yes"}'),
        withoutCertificate: value('twoway_edge_handshakes_total{certificate="no"}'),
      };
    };
    const before = await read();
    expect((await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA })).status).toBe(
      200,
    );
    expect((await curl(hello(), { ca: caFile, cert: byoc.cert, key: byoc.key, apiKey: keyA })).status).toBe(
      200,
    );
    expect((await curl(hello(), { ca: caFile, apiKey: keyA })).status).toBe(401);
    const after = await read();
    expect({
      ok: after.ok - before.ok,
      required: after.required - before.required,
      withCertificate: after.withCertificate - before.withCertificate,
      withoutCertificate: after.withoutCertificate - before.withoutCertificate,
    }).toEqual({ ok: 2, required: 1, withCertificate: 2, withoutCertificate: 1 });
  });

  test('the edge asks for a client certificate without listing CA names', async () => {
    const url = new URL(twoway.edgeUrl);
    const sClient = await run(
      'openssl',
      ['s_client', '-connect', `${url.hostname}:${url.port}`, '-CAfile', caFile, '-verify_return_error'],
      { input: '' },
    );
    expect(sClient.stdout).toContain('No client certificate CA names sent');
    expect(sClient.stdout).toMatch(/Verify return code: 0 \(ok\)/);
  });
});

describe('edge listener without a platform upstream', () => {
  const files = tempDir('twoway-edge-noup-');
  const twoway = build();
  afterAll(() => files.cleanup());

  test('other paths get a clear 404 edge_upstream_not_configured; the main listener is plain HTTP as before', async () => {
    const apiKey = await createTenant(twoway, 'solo', 'Solo');
    const caFile = writeFile(
      files.dir,
      'ca.pem',
      await (await fetch(`${twoway.url}/v1/ca/certificates`)).text(),
    );
    const made = await makeByoc(files.dir, 'solo', 'solo-client');
    const registered = await twoway.call('/v1/tenants/solo/client-certificates', {
      method: 'POST',
      token: apiKey,
      json: { certificatePem: readFileSync(made.cert, 'utf8') },
    });
    expect(registered.status).toBe(201);
    const other = await curl(`${twoway.edgeUrl}/api/anything`, {
      ca: caFile,
      cert: made.cert,
      key: made.key,
      apiKey,
    });
    expect(other.status).toBe(404);
    expect(other.headers['twoway-error']).toBe('edge_upstream_not_configured');
    expect(JSON.parse(other.body)).toMatchObject({ code: 'edge_upstream_not_configured' });
    expect(
      (
        await curl(`${twoway.edgeUrl}/v1/tenants/solo/mtls/hello`, {
          ca: caFile,
          cert: made.cert,
          key: made.key,
          apiKey,
        })
      ).body,
    ).toBe('Hello, world!');
    expect(twoway.url).toMatch(/^http:\/\//);
    expect((await fetch(`${twoway.url}/healthz`)).status).toBe(200);
  });

  test('a configured server certificate (TWOWAY_EDGE_CERT_FILE, TWOWAY_EDGE_KEY_FILE) replaces the default one', async () => {
    const pki = await makePki('Edge Operator');
    const server = await pki.leaf({
      cn: 'edge.example',
      eku: 'serverAuth',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    const own = await buildInTest({
      env: {
        TWOWAY_EDGE_CERT_FILE: writeFile(files.dir, 'edge.crt', server.certPem + pki.intermediate.certPem),
        TWOWAY_EDGE_KEY_FILE: writeFile(files.dir, 'edge.key', server.keyPem),
      },
    });
    const apiKey = await createTenant(own, 'own', 'Own');
    const made = await makeByoc(files.dir, 'own', 'own-client');
    await own.call('/v1/tenants/own/client-certificates', {
      method: 'POST',
      token: apiKey,
      json: { certificatePem: readFileSync(made.cert, 'utf8') },
    });
    const rootFile = writeFile(files.dir, 'operator-root.pem', pki.root.certPem);
    const hello = `${own.edgeUrl}/v1/tenants/own/mtls/hello`;
    expect((await curl(hello, { ca: rootFile, cert: made.cert, key: made.key, apiKey })).body).toBe(
      'Hello, world!',
    );
    // The platform CA no longer vouches for this listener.
    const platformCa = writeFile(
      files.dir,
      'platform.pem',
      await (await fetch(`${own.url}/v1/ca/certificates`)).text(),
    );
    expect((await curl(hello, { ca: platformCa, cert: made.cert, key: made.key, apiKey })).status).toBe(0);
  });
});

describe('edge listener with a platform upstream that bends HTTP', () => {
  const files = tempDir('twoway-edge-raw-');
  let platform: net.Server;
  let twoway: TestTwoway;
  let client: { cert: string; key: string; ca: string; apiKey: string };

  beforeAll(async () => {
    platform = net.createServer((socket) =>
      serveRawHttp(socket, (path) =>
        path === '/garbage'
          ? ['SSH-2.0-OpenSSH_9.2p1\r\n']
          : ['HTTP/1.1 100 Continue\r\n\r\n', finalResponse('after an interim response')],
      ),
    );
    await new Promise<void>((resolve) => platform.listen(0, '127.0.0.1', resolve));
    const { port } = platform.address() as net.AddressInfo;
    twoway = await startTestTwoway({ TWOWAY_EDGE_UPSTREAM: `http://127.0.0.1:${port}` });
    const made = await tenantWithByoc(twoway, files.dir, 'bent');
    const ca = writeFile(files.dir, 'ca.pem', await (await fetch(`${twoway.url}/v1/ca/certificates`)).text());
    client = { ...made, ca };
  });
  afterAll(async () => {
    await twoway?.close();
    await new Promise((resolve) => platform?.close(resolve));
    files.cleanup();
  });

  test('an unsolicited 100 Continue before the final response is skipped (RFC 9110 §15.2)', async () => {
    for (const path of ['/first', '/second']) {
      const answer = await curl(`${twoway.edgeUrl}${path}`, { ...client });
      expect(answer.status, path).toBe(200);
      expect(answer.body).toBe('after an interim response');
    }
  });

  test('a reply that is not HTTP is 502 upstream_protocol_error, logged at warn a few times, not per request', async () => {
    const before = logLines.length;
    for (let i = 0; i < 6; i += 1) {
      const answer = await curl(`${twoway.edgeUrl}/garbage`, { ...client });
      expect(answer.status).toBe(502);
      expect(answer.headers['twoway-error']).toBe('upstream_protocol_error');
    }
    const lines = logLines.slice(before).map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    const warned = lines.filter((line) => line.msg === 'platform upstream answered outside HTTP');
    expect(warned.length).toBeGreaterThan(0);
    expect(warned.length).toBeLessThanOrEqual(3);
    expect(warned.every((line) => line.level === 40)).toBe(true);
  });
});
