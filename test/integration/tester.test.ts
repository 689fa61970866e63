import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { findNginx, freePort, type RunningNginx, startMtlsNginx } from '../helpers/nginx.js';
import { build, buildInTest, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();
const run = promisify(execFile);
const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/index.js');

interface Report {
  verdict: string;
  message: string;
  certificate: {
    ok: boolean;
    source: string;
    error?: { code: string };
    summary?: { fingerprintSha256: string };
  };
  handshake: {
    completed: boolean;
    certificateRequested: boolean | null;
    acceptableCaNames: string[] | null;
    clientCertificateSent: boolean;
  };
  server: {
    chain: { subject: string; fingerprintSha256: string }[];
    trusted: boolean | null;
    trustError?: string;
  };
  http: { status: number; body: string; truncated: boolean } | null;
  timingsMs: { dns?: number; tcp?: number; tls?: number; firstByte?: number; total: number };
}

/** An HTTPS server with `serverCert` that answers 200 with a 3 KiB body (to check the 1 KiB cut). */
async function httpsServer(pki: TestPki, options: object): Promise<{ server: HttpsServer; url: string }> {
  const serverCert = await pki.leaf({
    cn: 'localhost',
    eku: 'serverAuth',
    dns: ['localhost'],
    ips: ['127.0.0.1'],
  });
  const server = createHttpsServer(
    { key: serverCert.keyPem, cert: serverCert.certPem + pki.intermediate.certPem, ...options },
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello ${'x'.repeat(3000)}`);
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/probe?q=1` };
}

describe.each(backends)('certificate tester on $name', (backend) => {
  let pki: TestPki;
  let other: TestPki;
  let client: CertKey;
  let accepting: MtlsServer;
  let rejecting: { server: HttpsServer; url: string };
  let rejecting12: { server: HttpsServer; url: string };
  let notAsking: { server: HttpsServer; url: string };
  let foreign: { server: HttpsServer; url: string };
  let silent: Server;
  const sockets: Socket[] = [];
  const twoway = build({ backend, env: { TWOWAY_IDENTITY_TEST_TIMEOUT_MS: '3000' } });
  let apiKey: string;
  const work = tempDir('twoway-tester-');

  beforeAll(async () => {
    pki = await makePki();
    other = await makePki('Other');
    client = await pki.leaf({ cn: 'tester-client' });
    accepting = await startMtlsServer(pki);
    rejecting = await httpsServer(pki, {
      requestCert: true,
      rejectUnauthorized: true,
      ca: [other.root.certPem],
    });
    rejecting12 = await httpsServer(pki, {
      requestCert: true,
      rejectUnauthorized: true,
      ca: [other.root.certPem],
      maxVersion: 'TLSv1.2',
    });
    notAsking = await httpsServer(pki, {});
    foreign = await httpsServer(other, {
      requestCert: true,
      rejectUnauthorized: true,
      ca: [pki.root.certPem],
    });
    silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    apiKey = await createTenant(twoway, 'acme', 'Acme');
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    silent?.close();
    for (const s of [rejecting, rejecting12, notAsking, foreign]) s?.server.close();
    await accepting?.close();
    work.cleanup();
  });

  /** Runs one test through the API and checks that the database did not change at all. */
  async function tryIt(json: Record<string, unknown>, expectedStatus = 200): Promise<Report> {
    const before = await snapshotDatabase(twoway);
    const response = await twoway.call('/v1/tenants/acme/identity-tests', {
      method: 'POST',
      json,
      token: apiKey,
    });
    const text = await response.text();
    expect(response.status, text).toBe(expectedStatus);
    expect(await snapshotDatabase(twoway)).toEqual(before);
    return JSON.parse(text) as Report;
  }

  const pem = () => ({
    certificatePem: client.certPem,
    privateKeyPem: client.keyPem,
    chainPem: pki.intermediate.certPem,
  });

  test('a server that requires and accepts the certificate: ok, with the CA names it asked for', async () => {
    const report = await tryIt({
      ...pem(),
      url: `${accepting.url}/hello`,
      trustAnchorsPem: pki.root.certPem,
    });
    expect(report.verdict).toBe('ok');
    expect(report.certificate).toMatchObject({ ok: true, source: 'upload' });
    expect(report.certificate.summary?.fingerprintSha256).toBe(client.fingerprintSha256);
    expect(report.handshake).toEqual({
      completed: true,
      certificateRequested: true,
      acceptableCaNames: ['CN=Twoway Test Root'],
      clientCertificateSent: true,
    });
    expect(report.server.trusted).toBe(true);
    expect(report.server.chain.map((c) => c.subject)).toEqual([
      'CN=localhost',
      'CN=Twoway Test Intermediate',
    ]);
    expect(report.http?.status).toBe(200);
    // The echo server reports the certificate it was shown.
    expect(JSON.parse(report.http?.body ?? '{}')).toMatchObject({
      clientFingerprint: client.fingerprintSha256,
    });
    for (const phase of ['dns', 'tcp', 'tls', 'firstByte', 'total'] as const)
      expect(report.timingsMs[phase]).toBeGreaterThanOrEqual(0);
  });

  test('a stored identity can be tested by id, and the first 1 KiB of the body is kept', async () => {
    const uploaded = await twoway.call('/v1/tenants/acme/identities', {
      method: 'POST',
      token: apiKey,
      json: { name: 'stored', ...pem() },
    });
    const { id } = (await uploaded.json()) as { id: string };
    const report = await tryIt({
      identityId: id,
      url: `${accepting.url}/`,
      trustAnchorsPem: pki.root.certPem,
    });
    expect(report.verdict).toBe('ok');
    expect(report.certificate).toMatchObject({ ok: true, source: 'identity' });
    const notAsked = await tryIt({ identityId: id, url: notAsking.url, trustAnchorsPem: pki.root.certPem });
    expect(notAsked.http?.body).toHaveLength(1024);
    expect(notAsked.http?.truncated).toBe(true);
    const missing = await twoway.call('/v1/tenants/acme/identity-tests', {
      method: 'POST',
      token: apiKey,
      json: { identityId: 'idn_nope', url: accepting.url },
    });
    expect(missing.status).toBe(404);

    // Disabled (say, after a compromise): like a forward, the tester no longer presents it.
    const disabled = await twoway.call(`/v1/tenants/acme/identities/${id}`, {
      method: 'PATCH',
      token: apiKey,
      json: { disabled: true },
    });
    expect(disabled.status).toBe(200);
    const refused = await tryIt({
      identityId: id,
      url: `${accepting.url}/`,
      trustAnchorsPem: pki.root.certPem,
    });
    expect(refused.verdict).toBe('certificate_invalid');
    expect(refused.certificate).toMatchObject({ ok: false, error: { code: 'identity_disabled' } });
    expect(refused.handshake.clientCertificateSent).toBe(false);
  });

  test('a server that rejects the certificate: server_rejected_certificate (TLS 1.3 and TLS 1.2)', async () => {
    for (const url of [rejecting.url, rejecting12.url]) {
      const report = await tryIt({ ...pem(), url, trustAnchorsPem: pki.root.certPem });
      expect(report.verdict, url).toBe('server_rejected_certificate');
      expect(report.handshake.certificateRequested).toBe(true);
      expect(report.handshake.acceptableCaNames).toEqual(['CN=Other Root']);
      expect(report.handshake.clientCertificateSent).toBe(true);
      expect(report.http).toBeNull();
    }
  });

  test('a server that does not ask for a certificate: server_did_not_request_certificate', async () => {
    const report = await tryIt({ ...pem(), url: notAsking.url, trustAnchorsPem: pki.root.certPem });
    expect(report.verdict).toBe('server_did_not_request_certificate');
    expect(report.handshake).toMatchObject({
      completed: true,
      certificateRequested: false,
      acceptableCaNames: null,
      clientCertificateSent: false,
    });
    expect(report.http?.status).toBe(200);
  });

  test('an untrusted server: server_untrusted, with its chain and the reason', async () => {
    const report = await tryIt({ ...pem(), url: foreign.url, trustAnchorsPem: pki.root.certPem });
    expect(report.verdict).toBe('server_untrusted');
    expect(report.server.trusted).toBe(false);
    expect(report.server.trustError).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    expect(report.server.chain.map((c) => c.subject)).toEqual(['CN=localhost', 'CN=Other Intermediate']);
    expect(report.http).toBeNull();
    // Without trust anchors the system roots do not know the test CA either.
    expect((await tryIt({ ...pem(), url: accepting.url })).verdict).toBe('server_untrusted');
  });

  test('a closed port: unreachable', async () => {
    const port = await freePort();
    const report = await tryIt({ ...pem(), url: `https://127.0.0.1:${port}/` });
    expect(report.verdict).toBe('unreachable');
    expect(report.handshake.completed).toBe(false);
  });

  test('a server that never answers: timeout, after the requested timeout', async () => {
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const report = await tryIt({ ...pem(), url: `https://127.0.0.1:${port}/`, timeoutMs: 300 });
    expect(report.verdict).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(report.timingsMs.tcp).toBeGreaterThanOrEqual(0);
    expect(report.timingsMs.tls).toBeUndefined();
  });

  test('a bad PKCS#12 password: certificate_invalid with bad_password (multipart, as a browser sends it)', async () => {
    const before = await snapshotDatabase(twoway);
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(makePkcs12(client, [pki.intermediate], 'right'))]), 'c.p12');
    form.set('password', 'wrong');
    form.set('url', `${accepting.url}/`);
    form.set('trustAnchorsPem', pki.root.certPem);
    const response = await twoway.call('/v1/tenants/acme/identity-tests', {
      method: 'POST',
      body: form,
      token: apiKey,
    });
    expect(response.status).toBe(200);
    const report = (await response.json()) as Report;
    expect(report.verdict).toBe('certificate_invalid');
    expect(report.certificate).toMatchObject({ ok: false, error: { code: 'bad_password' } });
    // The server was still probed, without a certificate: what it asks for is reported.
    expect(report.handshake.certificateRequested).toBe(true);
    expect(report.handshake.clientCertificateSent).toBe(false);
    expect(await snapshotDatabase(twoway)).toEqual(before);
    expect(twoway.bodies.join('\n')).not.toContain('right');
  });

  test('refusals: the forward SSRF guard, bad input', async () => {
    const strict = await buildInTest({ backend, env: { TWOWAY_FORWARD_ALLOW_PRIVATE: 'false' } });
    await strict.call('/v1/tenants', { method: 'POST', json: { id: 'acme', name: 'Acme' } });
    for (const url of [accepting.url, `https://localhost:${accepting.port}/`, 'https://169.254.169.254/']) {
      const response = await strict.call('/v1/tenants/acme/identity-tests', {
        method: 'POST',
        json: { ...pem(), url },
      });
      expect(response.status, url).toBe(403);
      expect(((await response.json()) as { code: string }).code).toBe('forward_destination_blocked');
    }
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...pem(), url: 'http://127.0.0.1/' }, 400, 'forward_url_invalid'],
      [{ url: accepting.url }, 400, 'bad_request'],
      [{ ...pem(), identityId: 'idn_x', url: accepting.url }, 400, 'bad_request'],
      [{ ...pem(), url: accepting.url, trustAnchorsPem: 'not pem' }, 422, 'invalid_trust_anchors'],
    ];
    for (const [json, status, code] of cases) {
      const before = await snapshotDatabase(twoway);
      const response = await twoway.call('/v1/tenants/acme/identity-tests', {
        method: 'POST',
        json,
        token: apiKey,
      });
      expect({ status: response.status, code: ((await response.json()) as { code: string }).code }).toEqual({
        status,
        code,
      });
      expect(await snapshotDatabase(twoway)).toEqual(before);
    }
  });

  test('twoway identity test (CLI) prints the report and exits 3 unless ok', async () => {
    const certFile = join(work.dir, 'client.pem');
    writeFileSync(certFile, client.certPem + pki.intermediate.certPem);
    writeFileSync(join(work.dir, 'client.key'), client.keyPem, { mode: 0o600 });
    writeFileSync(join(work.dir, 'root.pem'), pki.root.certPem);
    const env = {
      ...process.env,
      TWOWAY_DATA_DIR: twoway.config.dataDir,
      ...(twoway.config.databaseUrl ? { TWOWAY_DATABASE_URL: twoway.config.databaseUrl } : {}),
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_LOG_LEVEL: 'silent',
    };
    const args = [
      CLI,
      'identity',
      'test',
      '--tenant',
      'acme',
      '--cert',
      certFile,
      '--key',
      join(work.dir, 'client.key'),
    ];
    const ok = await run(
      process.execPath,
      [...args, '--url', `${accepting.url}/`, '--trust-anchors', join(work.dir, 'root.pem')],
      { env },
    );
    expect((JSON.parse(ok.stdout) as Report).verdict).toBe('ok');
    const refused = await run(
      process.execPath,
      [...args, '--url', notAsking.url, '--trust-anchors', join(work.dir, 'root.pem')],
      {
        env,
      },
    ).catch((err: { code: number; stdout: string }) => err);
    expect('code' in refused ? refused.code : 0).toBe(3);
    expect((JSON.parse(refused.stdout) as Report).verdict).toBe('server_did_not_request_certificate');
  });
});

const nginx = findNginx();

describe.skipIf(!nginx)(
  'certificate tester against nginx (ssl_verify_client on finishes the handshake)',
  () => {
    let pki: TestPki;
    const twoway = build();
    let server: RunningNginx;
    let url: string;
    const files = tempDir('twoway-tester-nginx-');

    beforeAll(async () => {
      pki = await makePki();
      const serverCert = await pki.leaf({ cn: 'localhost', eku: 'serverAuth', ips: ['127.0.0.1'] });
      server = await startMtlsNginx(nginx as string, files.dir, {
        serverPem: serverCert.certPem + pki.intermediate.certPem,
        serverKeyPem: serverCert.keyPem,
        clientCaPem: pki.root.certPem,
        verifyDepth: 3,
        location: "      return 200 'verified $ssl_client_s_dn';",
      });
      const port = server.port;
      url = `https://127.0.0.1:${port}/`;
      await createTenant(twoway, 'acme', 'Acme');
    });

    afterAll(async () => {
      await server?.close();
      files.cleanup();
    });

    test("nginx's 400 for a certificate it does not trust is server_rejected_certificate; a good one is ok", async () => {
      const test = async (issuer: TestPki) => {
        const leaf = await issuer.leaf({ cn: 'nginx-tester' });
        const before = await snapshotDatabase(twoway);
        const response = await twoway.call('/v1/tenants/acme/identity-tests', {
          method: 'POST',
          json: {
            certificatePem: leaf.certPem,
            privateKeyPem: leaf.keyPem,
            chainPem: issuer.intermediate.certPem,
            url,
            trustAnchorsPem: pki.root.certPem,
          },
        });
        expect(await snapshotDatabase(twoway)).toEqual(before);
        return (await response.json()) as Report;
      };
      const good = await test(pki);
      expect(good.verdict).toBe('ok');
      expect(good.http?.body).toBe('verified CN=nginx-tester');
      expect(good.handshake.acceptableCaNames).toEqual(['CN=Twoway Test Root']);
      const stranger = await test(await makePki('Stranger'));
      expect(stranger.verdict).toBe('server_rejected_certificate');
      expect(stranger.http?.status).toBe(400);
    });
  },
);
