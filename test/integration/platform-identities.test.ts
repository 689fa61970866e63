/**
 * The platform's own client identity (issue 16, items 1 and 2): issued by the platform outbound CA
 * (never the CA that signs tenants' CSRs), published without a token, presented to a customer's
 * nginx that trusts only the outbound CA, rotated with the next certificate published first; on
 * SQLite and PostgreSQL.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fingerprintSha256 } from '../../src/certificates/index.js';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { makeCsr, run } from '../helpers/edge-clients.js';
import { findNginx, type RunningNginx, startMtlsNginx } from '../helpers/nginx.js';
import { build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();
const nginx = findNginx();

interface Published {
  items: {
    identityId: string;
    version: number;
    active: boolean;
    fingerprintSha256: string;
    certificatePem: string;
  }[];
  caPem: string;
}

describe.each(backends)('platform identities on $name', (backend) => {
  const files = tempDir('twoway-platform-');
  const twoway = build({ backend });
  let pki: TestPki;
  let server: RunningNginx | undefined;
  let port = 0;
  let tenantKey: string;

  const published = async (): Promise<Published> => {
    const response = await fetch(`${twoway.url}/v1/platform/client-certificates`);
    expect(response.status).toBe(200);
    return (await response.json()) as Published;
  };

  beforeAll(async () => {
    pki = await makePki();
    tenantKey = await createTenant(twoway, 'tc-client-77');
  });
  afterAll(async () => {
    await server?.close();
    files.cleanup();
  });

  test("an identity issued by the platform outbound CA, published without a token, never chaining to the tenants' CA", async () => {
    const created = await twoway.call('/v1/platform/identities', {
      method: 'POST',
      json: { name: 'webhooks', issue: { commonName: 'mtls-prod.twoway.test' } },
    });
    expect(created.status).toBe(201);
    const identity = (await created.json()) as {
      id: string;
      activeVersion: number;
      versions: { subject: string; issuer: string; subjectAltNames: string[] }[];
    };
    expect(identity.versions[0]).toMatchObject({
      subject: 'CN=mtls-prod.twoway.test',
      subjectAltNames: ['DNS:mtls-prod.twoway.test'],
    });
    expect(identity.versions[0]?.issuer).toMatch(/Twoway Platform Outbound Issuing CA/);

    const { items, caPem } = await published();
    expect(items).toHaveLength(1);
    const [item] = items;
    expect(item).toMatchObject({ identityId: identity.id, version: 1, active: true });
    expect(item?.fingerprintSha256).toBe(fingerprintSha256(new X509Certificate(item?.certificatePem ?? '')));
    // Verifies against the published outbound chain, and not against the CA of tenants' CSRs.
    const leaf = join(files.dir, 'platform.crt');
    writeFileSync(leaf, item?.certificatePem ?? '');
    writeFileSync(join(files.dir, 'outbound.pem'), caPem);
    writeFileSync(
      join(files.dir, 'tenant-ca.pem'),
      await (await fetch(`${twoway.url}/v1/ca/certificates`)).text(),
    );
    const ok = await run('openssl', [
      'verify',
      '-purpose',
      'sslclient',
      '-CAfile',
      join(files.dir, 'outbound.pem'),
      leaf,
    ]);
    expect(ok.code, ok.stderr).toBe(0);
    const foreign = await run('openssl', ['verify', '-CAfile', join(files.dir, 'tenant-ca.pem'), leaf]);
    expect(foreign.code).not.toBe(0);
    // No key material anywhere in what the API answers.
    expect(twoway.bodies.join('\n')).not.toContain('PRIVATE KEY');
  });

  test.skipIf(!nginx)(
    "a customer's nginx trusting only the outbound CA accepts the platform identity and refuses a tenant's issued certificate",
    async () => {
      const { items, caPem } = await published();
      const identityId = items[0]?.identityId as string;
      const serverCert = await pki.leaf({
        cn: 'localhost',
        eku: 'serverAuth',
        dns: ['localhost'],
        ips: ['127.0.0.1'],
      });
      writeFileSync(join(files.dir, 'server-root.pem'), pki.root.certPem);
      server = await startMtlsNginx(nginx as string, files.dir, {
        serverPem: serverCert.certPem + pki.intermediate.certPem,
        serverKeyPem: serverCert.keyPem,
        // Only the platform outbound CA (issuing CA and root).
        clientCaPem: caPem,
        verifyDepth: 2,
        location: `      default_type application/json;
      return 200 '{"verify":"$ssl_client_verify","subject":"$ssl_client_s_dn"}';`,
      });
      port = server.port;
      // The platform presents its identity (a mapping of the reserved platform tenant, as the
      // operator makes it).
      const mapped = await twoway.call('/v1/tenants/_platform/mappings', {
        method: 'POST',
        json: {
          name: 'customer',
          service: 'webhooks',
          url: `https://127.0.0.1:${port}/`,
          identityId,
          trustAnchorsPem: pki.root.certPem,
        },
      });
      expect(mapped.status).toBe(201);
      const forwarded = await twoway.call('/v1/runtime/forward', {
        method: 'POST',
        headers: {
          'twoway-tenant': '_platform',
          'twoway-service': 'webhooks',
          'twoway-forward-url': `https://127.0.0.1:${port}/hooks`,
        },
        body: '{}',
      });
      expect(forwarded.status).toBe(200);
      expect(await forwarded.json()).toEqual({ verify: 'SUCCESS', subject: 'CN=mtls-prod.twoway.test' });

      // Tenant tc-client-77's certificate, issued by the platform CA from its CSR, is refused.
      const csr = await makeCsr(files.dir, 'tenant', '/CN=tc-client-77');
      const issued = await twoway.call('/v1/tenants/tc-client-77/certificate-signing-requests', {
        method: 'POST',
        token: tenantKey,
        json: { csrPem: readFileSync(csr.csr, 'utf8') },
      });
      expect(issued.status).toBe(201);
      const { certificatePem, chainPem } = (await issued.json()) as {
        certificatePem: string;
        chainPem: string;
      };
      writeFileSync(join(files.dir, 'tenant.crt'), certificatePem + chainPem);
      const refused = await run('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--cacert',
        join(files.dir, 'server-root.pem'),
        '--cert',
        join(files.dir, 'tenant.crt'),
        '--key',
        csr.key,
        `https://localhost:${port}/hooks`,
      ]);
      expect(refused.stdout).toBe('400');
    },
  );

  test('rotation: the next version is published before it is presented, then becomes the active one', async () => {
    const before = await published();
    const identityId = before.items[0]?.identityId as string;
    const activateAt = new Date(Date.now() + 86_400_000).toISOString();
    const rotated = await twoway.call(`/v1/platform/identities/${identityId}/versions`, {
      method: 'POST',
      json: { issue: { commonName: 'mtls-prod.twoway.test', keyType: 'RSA' }, activateAt },
    });
    expect(rotated.status).toBe(201);
    expect(((await rotated.json()) as { activeVersion: number }).activeVersion).toBe(1);
    const next = await published();
    expect(next.items.map((i) => [i.version, i.active])).toEqual([
      [1, true],
      [2, false],
    ]);
    const activated = await twoway.call(`/v1/platform/identities/${identityId}/versions/2/activate`, {
      method: 'POST',
    });
    expect(activated.status).toBe(200);
    const after = await published();
    expect(after.items.map((i) => [i.version, i.active])).toEqual([[2, true]]);
    expect(after.items[0]?.fingerprintSha256).toBe(next.items[1]?.fingerprintSha256);
  });

  test('isolation and bad input: only the operator; malformed requests change nothing', async () => {
    const listBefore = await (await twoway.call('/v1/platform/identities')).text();
    for (const [method, path] of [
      ['GET', '/v1/platform/identities'],
      ['POST', '/v1/platform/identities'],
      ['GET', '/v1/platform/identities/idn_x'],
      ['POST', '/v1/platform/identities/idn_x/versions'],
      ['POST', '/v1/platform/identities/idn_x/versions/1/activate'],
    ] as const) {
      const json = method === 'POST' ? { name: 'x', issue: { commonName: 'x.example' } } : undefined;
      const asTenant = await twoway.call(path, { method, token: tenantKey, ...(json ? { json } : {}) });
      expect(asTenant.status, `${method} ${path}`).toBe(404);
      const anonymous = await twoway.call(path, { method, token: null, ...(json ? { json } : {}) });
      expect(anonymous.status, `${method} ${path}`).toBe(401);
    }
    for (const json of [
      { name: 'x', issue: { commonName: '' } },
      { name: 'x', issue: { commonName: 'x.example', keyType: 'DSA' } },
      { name: 'x', issue: { commonName: 'x.example', other: 1 } },
      { name: 'x', issue: 'x.example' },
    ]) {
      const refused = await twoway.call('/v1/platform/identities', { method: 'POST', json });
      expect(refused.status, JSON.stringify(json)).toBe(400);
    }
    const noCertificate = await twoway.call('/v1/platform/identities', {
      method: 'POST',
      json: { name: 'x' },
    });
    expect(noCertificate.status).toBeGreaterThanOrEqual(400);
    expect((await twoway.call('/v1/platform/identities/idn_nope')).status).toBe(404);
    expect(await (await twoway.call('/v1/platform/identities')).text()).toBe(listBefore);
    // The reserved tenant is not listed as a tenant.
    const tenants = (await (await twoway.call('/v1/tenants')).json()) as { items: { id: string }[] };
    expect(tenants.items.map((t) => t.id)).not.toContain('_platform');
  });
});
