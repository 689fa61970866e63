import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fingerprintSha256 } from '../../src/certificates/index.js';
import { makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { findNginx, type RunningNginx, startMtlsNginx } from '../helpers/nginx.js';
import { build, createTenant, uploadPkcs12 } from '../helpers/twoway.js';

const nginx = findNginx();

describe.skipIf(!nginx)('forward to nginx with ssl_verify_client on', () => {
  let pki: TestPki;
  const twoway = build();
  let server: RunningNginx;
  let port: number;
  const files = tempDir('twoway-nginx-');

  beforeAll(async () => {
    pki = await makePki();
    const serverCert = await pki.leaf({
      cn: 'localhost',
      eku: 'serverAuth',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
    });
    // nginx verifies the client chain up to this root; the client sends its intermediate.
    server = await startMtlsNginx(nginx as string, files.dir, {
      serverPem: serverCert.certPem + pki.intermediate.certPem,
      serverKeyPem: serverCert.keyPem,
      clientCaPem: pki.root.certPem,
      verifyDepth: 3,
      location: `      default_type application/json;
      return 200 '{"verify":"$ssl_client_verify","subject":"$ssl_client_s_dn","method":"$request_method","cert":"$ssl_client_escaped_cert"}';`,
    });
    port = server.port;
  });

  afterAll(async () => {
    await server?.close();
    files.cleanup();
  });

  test('nginx sees the uploaded PKCS#12 certificate and verifies it', async () => {
    const leaf = await pki.leaf({ cn: 'nginx-client', key: 'rsa2048' });
    const apiKey = await createTenant(twoway, 'globex', 'Globex');
    const uploaded = await uploadPkcs12(
      twoway,
      'globex',
      makePkcs12(leaf, [pki.intermediate], 'pw', { legacy: true }),
      'pw',
      apiKey,
    );
    expect(uploaded.status).toBe(201);
    const { id } = (await uploaded.json()) as { id: string };
    const mapped = await twoway.call('/v1/tenants/globex/mappings', {
      method: 'POST',
      token: apiKey,
      json: {
        name: 'nginx',
        service: 'api',
        url: `https://127.0.0.1:${port}/`,
        identityId: id,
        trustAnchorsPem: pki.root.certPem,
      },
    });
    expect(mapped.status).toBe(201);

    for (const method of ['GET', 'POST']) {
      const response = await fetch(`${twoway.url}/v1/runtime/forward`, {
        method,
        headers: {
          authorization: `Bearer ${apiKey}`,
          'twoway-service': 'api',
          'twoway-forward-url': `https://127.0.0.1:${port}/orders`,
        },
        ...(method === 'POST' ? { body: Buffer.alloc(5 * 1024 * 1024, 7) } : {}),
      });
      expect(response.status).toBe(200);
      const echo = (await response.json()) as {
        verify: string;
        subject: string;
        method: string;
        cert: string;
      };
      expect(echo.verify).toBe('SUCCESS');
      expect(echo.method).toBe(method);
      expect(echo.subject).toBe('CN=nginx-client');
      const presented = new X509Certificate(decodeURIComponent(echo.cert));
      expect(fingerprintSha256(presented)).toBe(leaf.fingerprintSha256);
    }
  });
});
