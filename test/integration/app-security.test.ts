import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, keyEncodings, makePkcs12, makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends, databaseText as databaseTextOf } from '../helpers/backends.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, createTenant, logLines, uploadPkcs12 } from '../helpers/twoway.js';

const backends = await appBackends();
const PASSWORD = 'p12-password-never-logged';

describe.each(backends)('secrets and tenant isolation on $name', (backend) => {
  let pki: TestPki;
  let upstream: MtlsServer;
  const twoway = build({ backend });
  let keyA: string;
  let keyB: string;
  let leafA: CertKey;
  let leafA2: CertKey;
  let identityA: string;
  let identityA2: string;

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    keyA = await createTenant(twoway, 'tenant-a', 'A');
    keyB = await createTenant(twoway, 'tenant-b', 'B');
    leafA = await pki.leaf({ cn: 'tenant-a-client', key: 'rsa2048' });
    leafA2 = await pki.leaf({ cn: 'tenant-a-second', key: 'ec384' });
    const uploaded = await uploadPkcs12(
      twoway,
      'tenant-a',
      makePkcs12(leafA, [pki.intermediate], PASSWORD),
      PASSWORD,
      keyA,
    );
    expect(uploaded.status).toBe(201);
    identityA = ((await uploaded.json()) as { id: string }).id;
    // The second identity goes in as PEM in JSON, the other upload path.
    const pem = await twoway.call('/v1/tenants/tenant-a/identities', {
      method: 'POST',
      token: keyA,
      json: {
        name: 'pem',
        certificatePem: leafA2.certPem,
        privateKeyPem: leafA2.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(pem.status).toBe(201);
    identityA2 = ((await pem.json()) as { id: string }).id;
    for (const [name, id] of [
      ['one', identityA],
      ['two', identityA2],
    ] as const) {
      const mapped = await twoway.call('/v1/tenants/tenant-a/mappings', {
        method: 'POST',
        token: keyA,
        json: {
          name,
          service: 'api',
          url: `${upstream.url}/${name}`,
          identityId: id,
          trustAnchorsPem: pki.root.certPem,
        },
      });
      expect(mapped.status).toBe(201);
    }
    const forwarded = await forward(keyA, '/one/x');
    expect(forwarded.status).toBe(200);
  });

  afterAll(() => upstream?.close());

  function forward(token: string, path: string, tenantHeader?: string): Promise<Response> {
    return fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: {
        authorization: `Bearer ${token}`,
        'twoway-service': 'api',
        'twoway-forward-url': `${upstream.url}${path}`,
        ...(tenantHeader ? { 'twoway-tenant': tenantHeader } : {}),
      },
    });
  }

  function databaseText(): Promise<string> {
    return databaseTextOf(backend.name, twoway.dataDir, twoway.config.databaseUrl);
  }

  test('the database holds no private key in any encoding, and no password', async () => {
    const text = (await databaseText()).toLowerCase();
    expect(text.length).toBeGreaterThan(1000);
    // The certificate is there (public), which proves the scan reads the rows it should.
    expect(text).toContain(leafA.fingerprintSha256);
    for (const leaf of [leafA, leafA2]) {
      for (const encoding of keyEncodings(leaf.keyPem)) expect(text).not.toContain(encoding.toLowerCase());
    }
    expect(text).not.toContain(PASSWORD.toLowerCase());
  });

  test('tenant B can neither read, map nor forward with tenant A identity', async () => {
    expect((await twoway.call(`/v1/tenants/tenant-a/identities/${identityA}`, { token: keyB })).status).toBe(
      404,
    );
    expect((await twoway.call('/v1/tenants/tenant-a/identities', { token: keyB })).status).toBe(404);
    expect((await twoway.call('/v1/tenants/tenant-a/mappings', { token: keyB })).status).toBe(404);
    const crossMap = await twoway.call('/v1/tenants/tenant-b/mappings', {
      method: 'POST',
      token: keyB,
      json: { name: 'steal', service: 'api', url: `${upstream.url}/`, identityId: identityA },
    });
    expect(crossMap.status).toBe(404);
    expect(((await crossMap.json()) as { code: string }).code).toBe('not_found');
    const crossForward = await forward(keyB, '/one/x', 'tenant-a');
    expect(crossForward.status).toBe(404);
    const ownForward = await forward(keyB, '/one/x');
    expect(ownForward.status).toBe(403);
    expect(ownForward.headers.get('twoway-error')).toBe('no_mapping');
    const cross = await twoway.call(`/v1/tenants/tenant-a/identities/${identityA}`, {
      method: 'DELETE',
      token: keyB,
    });
    expect(cross.status).toBe(404);
    const rotate = await twoway.call(`/v1/tenants/tenant-a/identities/${identityA}/versions/1/activate`, {
      method: 'POST',
      token: keyB,
    });
    expect(rotate.status).toBe(404);
    // And the tenant's own key still works.
    expect((await twoway.call(`/v1/tenants/tenant-a/identities/${identityA}`, { token: keyA })).status).toBe(
      200,
    );
  });

  test('a ciphertext copied to another row does not decrypt', async () => {
    // Copy identity A's sealed key over identity A2's row, in the database itself.
    if (backend.name === 'sqlite') {
      const db = new Database(join(twoway.dataDir, 'twoway.db'));
      db.prepare(
        `UPDATE identity_versions SET (ciphertext, iv, wrapped_dek, kek_id) =
           (SELECT ciphertext, iv, wrapped_dek, kek_id FROM identity_versions WHERE identity_id = ? AND version = 1)
         WHERE identity_id = ? AND version = 1`,
      ).run(identityA, identityA2);
      db.close();
    } else {
      const client = new pg.Client(twoway.config.databaseUrl);
      await client.connect();
      await client.query(
        `UPDATE identity_versions AS t SET ciphertext = s.ciphertext, iv = s.iv, wrapped_dek = s.wrapped_dek, kek_id = s.kek_id
           FROM identity_versions s WHERE s.identity_id = $1 AND s.version = 1 AND t.identity_id = $2 AND t.version = 1`,
        [identityA, identityA2],
      );
      await client.end();
    }
    const version = await twoway.store.getVersion('tenant-a', identityA2, 1);
    expect(version).toBeDefined();
    await expect(twoway.services.identities.openPrivateKey(version!)).rejects.toMatchObject({
      reason: 'unwrap_failed',
    });
    // The original row still opens: the failure is the binding, not a broken key.
    const original = await twoway.store.getVersion('tenant-a', identityA, 1);
    await expect(twoway.services.identities.openPrivateKey(original!)).resolves.toBeInstanceOf(Buffer);
    // Through the API, the forward fails closed with a generic 500, never sending without the key.
    const before = upstream.handshakes();
    const response = await forward(keyA, '/two/x');
    expect(response.status).toBe(500);
    expect(upstream.handshakes()).toBe(before);
  });

  test('no response and no log line of this run holds the key or the password', () => {
    const everything = [...twoway.bodies, ...logLines].join('\n');
    expect(logLines.length).toBeGreaterThan(5);
    for (const leaf of [leafA, leafA2]) {
      for (const encoding of keyEncodings(leaf.keyPem)) expect(everything).not.toContain(encoding);
    }
    expect(everything).not.toContain(PASSWORD);
    // API keys are answered once, at creation; they never reach a log line.
    const logs = logLines.join('\n');
    expect(logs).not.toContain(keyA);
    expect(logs).not.toContain(keyB);
    expect(logs).not.toContain('test-operator-token');
  });
});
