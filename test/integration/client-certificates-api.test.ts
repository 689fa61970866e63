import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS } from '../../src/certificates/index.js';
import { type CertKey, keyEncodings, makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends, databaseText as databaseTextOf } from '../helpers/backends.js';
import { makeCsr, openssl, writeFile } from '../helpers/edge-clients.js';
import { build, createTenant, logLines } from '../helpers/twoway.js';

const backends = await appBackends();

/** Every field of API.md "ClientCertificate" (keySize/curve as the key has them, revokedAt once revoked). */
const BASE_FIELDS = [
  'createdAt',
  'fingerprintSha256',
  'id',
  'issuer',
  'keyType',
  'name',
  'notAfter',
  'notBefore',
  'serialNumber',
  'source',
  'spkiSha256',
  'status',
  'subject',
  'tenant',
];

interface View {
  id: string;
  tenant: string;
  name: string;
  source: string;
  status: string;
  subject: string;
  serialNumber: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  keyType: string;
  keySize?: number;
  curve?: string;
  revokedAt?: string;
  certificatePem?: string;
  chainPem?: string;
  code?: string;
}

describe.each(backends)('client certificates API on $name', (backend) => {
  const files = tempDir('twoway-ccr-');
  const twoway = build({ backend });
  let pki: TestPki;
  let keyA: string;
  let keyB: string;
  /** Keys sent by mistake in the refusal test: none may be found anywhere afterwards. */
  const leakedKeys: CertKey[] = [];

  beforeAll(async () => {
    pki = await makePki();
    keyA = await createTenant(twoway, 'tenant-a', 'A');
    keyB = await createTenant(twoway, 'tenant-b', 'B');
  });

  afterAll(() => files.cleanup());

  function upload(form: FormData, token = keyA, tenant = 'tenant-a'): Promise<Response> {
    return twoway.call(`/v1/tenants/${tenant}/client-certificates`, { method: 'POST', body: form, token });
  }
  function fileForm(bytes: Buffer | string, name = 'client.crt'): FormData {
    const form = new FormData();
    form.set('name', 'laptop');
    form.set('file', new Blob([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)]), name);
    return form;
  }
  const json = async (response: Response) => (await response.json()) as View;

  test('registers a PEM file, a DER file, pasted PEM and JSON, answering exactly the ClientCertificate shape', async () => {
    const pemLeaf = await pki.leaf({ cn: 'pem-file', key: 'ec256' });
    const pemAnswer = await upload(fileForm(pemLeaf.certPem));
    expect(pemAnswer.status).toBe(201);
    const view = await json(pemAnswer);
    expect(Object.keys(view).sort()).toEqual([...BASE_FIELDS, 'curve', 'keySize'].sort());
    expect(view).toMatchObject({
      tenant: 'tenant-a',
      name: 'laptop',
      source: 'uploaded',
      status: 'active',
      subject: 'CN=pem-file',
      issuer: 'CN=Twoway Test Intermediate',
      fingerprintSha256: pemLeaf.fingerprintSha256,
      keyType: 'EC',
      keySize: 256,
      curve: 'P-256',
    });
    expect(view.id).toMatch(/^ccr_/);

    const derLeaf = await pki.leaf({ cn: 'der-file', key: 'rsa3072' });
    const der = new X509Certificate(derLeaf.certPem).raw;
    const derAnswer = await upload(fileForm(der, 'client.der'));
    expect(derAnswer.status).toBe(201);
    const derView = await json(derAnswer);
    expect(derView).toMatchObject({ subject: 'CN=der-file', keyType: 'RSA', keySize: 3072 });
    expect(Object.keys(derView).sort()).toEqual([...BASE_FIELDS, 'keySize'].sort());

    const pasted = await pki.leaf({ cn: 'pasted', key: 'ed25519' });
    const form = new FormData();
    form.set('certificate', pasted.certPem);
    const pastedAnswer = await upload(form);
    expect(pastedAnswer.status).toBe(201);
    const pastedView = await json(pastedAnswer);
    expect(pastedView).toMatchObject({
      subject: 'CN=pasted',
      keyType: 'Ed25519',
      name: 'client certificate',
    });
    expect(Object.keys(pastedView).sort()).toEqual([...BASE_FIELDS].sort());

    // JSON with the leaf followed by its chain: the leaf (first certificate) is registered.
    const jsonLeaf = await pki.leaf({ cn: 'json', key: 'ec384' });
    const jsonAnswer = await twoway.call('/v1/tenants/tenant-a/client-certificates', {
      method: 'POST',
      token: keyA,
      json: { name: 'json', certificatePem: jsonLeaf.certPem + pki.intermediate.certPem },
    });
    expect(jsonAnswer.status).toBe(201);
    expect(await json(jsonAnswer)).toMatchObject({
      fingerprintSha256: jsonLeaf.fingerprintSha256,
      curve: 'P-384',
    });
  });

  test('list, get, revoke (idempotent) and delete', async () => {
    const leaf = await pki.leaf({ cn: 'lifecycle' });
    const created = await json(await upload(fileForm(leaf.certPem)));
    const listed = (await (
      await twoway.call('/v1/tenants/tenant-a/client-certificates', { token: keyA })
    ).json()) as {
      items: View[];
    };
    expect(listed.items.map((i) => i.id)).toContain(created.id);
    const got = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${created.id}`, { token: keyA });
    expect(await json(got)).toEqual(created);

    const revoke = () =>
      twoway.call(`/v1/tenants/tenant-a/client-certificates/${created.id}/revoke`, {
        method: 'POST',
        token: keyA,
      });
    const revoked = await json(await revoke());
    expect(revoked.status).toBe('revoked');
    expect(Object.keys(revoked).sort()).toEqual([...BASE_FIELDS, 'curve', 'keySize', 'revokedAt'].sort());
    expect((await json(await revoke())).revokedAt).toBe(revoked.revokedAt);

    const deleted = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${created.id}`, {
      method: 'DELETE',
      token: keyA,
    });
    expect(deleted.status).toBe(204);
    expect(
      (await twoway.call(`/v1/tenants/tenant-a/client-certificates/${created.id}`, { token: keyA })).status,
    ).toBe(404);
    const after = (await (
      await twoway.call('/v1/tenants/tenant-a/client-certificates', { token: keyA })
    ).json()) as {
      items: View[];
    };
    expect(after.items.map((i) => i.id)).not.toContain(created.id);
    // A deleted certificate may be registered again.
    expect((await upload(fileForm(leaf.certPem))).status).toBe(201);
  });

  test('the same certificate twice is 409 in one tenant; another tenant may register it too, unaware of the first', async () => {
    const leaf = await pki.leaf({ cn: 'twice' });
    expect((await upload(fileForm(leaf.certPem))).status).toBe(201);
    const again = await upload(fileForm(leaf.certPem));
    expect(again.status).toBe(409);
    expect((await json(again)).code).toBe('client_certificate_exists');
    // Registration proves nothing (the certificate is public): first-come would let tenant B lock
    // tenant A out, and B's 409 would tell B that someone has it.
    const other = await upload(fileForm(leaf.certPem), keyB, 'tenant-b');
    expect(other.status).toBe(201);
    const otherAgain = await upload(fileForm(leaf.certPem), keyB, 'tenant-b');
    expect((await json(otherAgain)).code).toBe('client_certificate_exists');
  });

  test('the policy refuses weak, disallowed, expired, not yet valid, too long and server-only certificates', async () => {
    const now = Date.now();
    const cases: [string, Promise<CertKey>, string][] = [
      ['RSA 1024', pki.leaf({ cn: 'rsa1024', key: 'rsa1024', issuer: 'self' }), 'weak_key'],
      ['EC P-521', pki.leaf({ cn: 'p521', key: 'ec521' }), 'key_type_not_allowed'],
      [
        'SHA-1 signature',
        pki.leaf({ cn: 'sha1', key: 'rsa2048', hash: 'SHA-1', issuer: 'self' }),
        'weak_signature',
      ],
      [
        'expired',
        pki.leaf({ cn: 'old', notBefore: new Date(now - 30 * DAY_MS), notAfter: new Date(now - DAY_MS) }),
        'certificate_expired',
      ],
      [
        'not yet valid',
        pki.leaf({ cn: 'future', notBefore: new Date(now + DAY_MS), notAfter: new Date(now + 30 * DAY_MS) }),
        'certificate_not_yet_valid',
      ],
      [
        '400 days',
        pki.leaf({ cn: 'long', notBefore: new Date(now - DAY_MS), notAfter: new Date(now + 399 * DAY_MS) }),
        'validity_too_long',
      ],
      ['serverAuth only', pki.leaf({ cn: 'server', eku: 'serverAuth' }), 'client_auth_not_allowed'],
    ];
    for (const [label, made, code] of cases) {
      const answer = await upload(fileForm((await made).certPem));
      expect({ label, status: answer.status, code: (await json(answer)).code }).toEqual({
        label,
        status: 422,
        code,
      });
    }
    const garbage = await upload(fileForm(Buffer.from('not a certificate at all')));
    expect((await json(garbage)).code).toBe('unsupported_format');
    // A certificate valid exactly 398 days is within the policy.
    const ok = await pki.leaf({ cn: 'rsa4096-398', key: 'rsa2048', notAfter: new Date(now + 397 * DAY_MS) });
    expect((await upload(fileForm(ok.certPem))).status).toBe(201);
  });

  test('a private key in the body is refused with private_key_not_accepted and is found nowhere afterwards', async () => {
    const leaf = await pki.leaf({ cn: 'with-key', key: 'rsa2048' });
    const csrLeaf = await pki.leaf({ cn: 'csr-with-key', key: 'ec256' });
    leakedKeys.push(leaf, csrLeaf);
    const der = Buffer.from(leaf.keyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const keyAndCert = new FormData();
    keyAndCert.set('certificate', leaf.certPem);
    keyAndCert.set('privateKey', new Blob([leaf.keyPem]), 'client.key');
    const attempts: [string, Promise<Response>][] = [
      ['PEM bundle with the key', upload(fileForm(leaf.certPem + leaf.keyPem))],
      ['key only', upload(fileForm(leaf.keyPem, 'client.key'))],
      ['DER PKCS#8 key', upload(fileForm(der, 'client.der'))],
      ['PKCS#12', upload(fileForm(makePkcs12(leaf, [], 'p12-pass'), 'client.p12'))],
      ['certificate + privateKey parts', upload(keyAndCert)],
      [
        'JSON privateKeyPem',
        twoway.call('/v1/tenants/tenant-a/client-certificates', {
          method: 'POST',
          token: keyA,
          json: { certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem },
        }),
      ],
      [
        'JSON certificatePem holding the key',
        twoway.call('/v1/tenants/tenant-a/client-certificates', {
          method: 'POST',
          token: keyA,
          json: { certificatePem: leaf.certPem + leaf.keyPem },
        }),
      ],
      [
        'CSR with its key',
        twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
          method: 'POST',
          token: keyA,
          json: {
            csrPem: `${csrLeaf.keyPem}-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n`,
          },
        }),
      ],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt;
      expect({ label, status: answer.status, code: (await json(answer)).code }).toEqual({
        label,
        status: 422,
        code: 'private_key_not_accepted',
      });
    }
    const listed = (await (
      await twoway.call('/v1/tenants/tenant-a/client-certificates', { token: keyA })
    ).json()) as {
      items: View[];
    };
    expect(listed.items.map((i) => i.subject)).not.toContain('CN=with-key');

    const haystacks = [logLines.join('\n'), twoway.bodies.join('\n'), await databaseText()].map((t) =>
      t.toLowerCase(),
    );
    for (const key of leakedKeys) {
      for (const encoding of keyEncodings(key.keyPem)) {
        for (const haystack of haystacks) expect(haystack).not.toContain(encoding.toLowerCase());
      }
    }
  });

  test('CSR signing issues a clientAuth certificate naming the tenant, with a random 128-bit serial and the chain', async () => {
    const csr = await makeCsr(files.dir, 'svc', '/O=Tenant A/CN=svc', 'rsa');
    const sign = (body: Record<string, unknown>) =>
      twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
        method: 'POST',
        token: keyA,
        json: body,
      });
    const answer = await sign({ name: 'svc', csrPem: readFileSync(csr.csr, 'utf8') });
    expect(answer.status).toBe(201);
    const view = await json(answer);
    expect(Object.keys(view).sort()).toEqual(
      [...BASE_FIELDS, 'certificatePem', 'chainPem', 'keySize'].sort(),
    );
    expect(view).toMatchObject({
      source: 'issued',
      status: 'active',
      subject: 'CN=svc,O=Tenant A',
      keyType: 'RSA',
    });
    const certFile = writeFile(files.dir, 'svc.crt', view.certificatePem ?? '');
    const chain =
      (view.chainPem ?? '').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    expect(chain).toHaveLength(2);
    writeFile(files.dir, 'issuing.pem', chain[0] ?? '');
    writeFile(files.dir, 'root.pem', chain[1] ?? '');
    expect(
      await openssl(
        files.dir,
        'verify',
        '-CAfile',
        'root.pem',
        '-untrusted',
        'issuing.pem',
        '-purpose',
        'sslclient',
        'svc.crt',
      ),
    ).toMatch(/svc\.crt: OK/);
    const text = await openssl(files.dir, 'x509', '-in', certFile, '-noout', '-text');
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toContain('URI:urn:twoway:tenant:tenant-a');
    expect(text).toMatch(/CA:FALSE/);
    const cert = new X509Certificate(view.certificatePem ?? '');
    expect(cert.serialNumber.replace(/^00/, '')).toMatch(/^[0-9A-F]{32}$/);
    expect(Date.parse(view.notAfter) - Date.parse(view.notBefore)).toBe(365 * DAY_MS);
    // The CSR's own key is the certificate's.
    expect(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(csr.key)))).toBe(
      true,
    );

    const second = await json(await sign({ csrPem: readFileSync(csr.csr, 'utf8'), validityDays: 30 }));
    expect(second.serialNumber).not.toBe(view.serialNumber);
    expect(Date.parse(second.notAfter) - Date.parse(second.notBefore)).toBe(30 * DAY_MS);
    expect((await json(await sign({ csrPem: readFileSync(csr.csr, 'utf8'), validityDays: 500 }))).code).toBe(
      'validity_too_long',
    );
  });

  test('a certificate the platform CA issued cannot be uploaded again, not even after deletion', async () => {
    const csr = await makeCsr(files.dir, 'reupload', '/CN=reupload', 'ec');
    const issued = await json(
      await twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
        method: 'POST',
        token: keyA,
        json: { name: 'reupload', csrPem: readFileSync(csr.csr, 'utf8') },
      }),
    );
    const deleted = await twoway.call(`/v1/tenants/tenant-a/client-certificates/${issued.id}`, {
      method: 'DELETE',
      token: keyA,
    });
    expect(deleted.status).toBe(204);
    for (const [token, tenant] of [
      [keyA, 'tenant-a'],
      [keyB, 'tenant-b'],
    ] as const) {
      const again = await upload(fileForm(issued.certificatePem ?? ''), token, tenant);
      expect(again.status).toBe(422);
      expect((await json(again)).code).toBe('issued_certificate_not_accepted');
    }
  });

  test('a certificate naming a Twoway tenant in its subjectAltName is refused with reserved_tenant_name', async () => {
    for (const [name, uri] of [
      ['claims-b', 'urn:twoway:tenant:tenant-b'],
      ['claims-b-upper', 'URN:TWOWAY:tenant:tenant-b'],
      // An XFCC reader percent-decodes the URI to urn:twoway:tenant:tenant-b.
      ['claims-b-encoded', 'urn:twoway:tenant%3Atenant-b'],
      ['claims-b-encoded-twice', 'urn%253Atwoway%253Atenant%253Atenant-b'],
    ] as const) {
      await openssl(
        files.dir,
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '30',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.crt`,
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=URI:${uri}`,
      );
      const answer = await upload(
        fileForm(readFileSync(join(files.dir, `${name}.crt`), 'utf8')),
        keyA,
        'tenant-a',
      );
      expect(answer.status, uri).toBe(422);
      expect((await json(answer)).code).toBe('reserved_tenant_name');
    }
    const listed = await json(await twoway.call('/v1/tenants/tenant-a/client-certificates', { token: keyA }));
    expect(JSON.stringify(listed)).not.toContain('claims-b');
  });

  test('CSR signing refuses a bad signature, weak keys and hashes, and what is not a CSR', async () => {
    const good = await makeCsr(files.dir, 'bad', '/CN=bad');
    const der = Buffer.from(
      readFileSync(good.csr, 'utf8')
        .replace(/-----[^-]+-----/g, '')
        .replace(/\s+/g, ''),
      'base64',
    );
    der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff; // inside the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await openssl(
      files.dir,
      'req',
      '-new',
      '-newkey',
      'rsa:1024',
      '-nodes',
      '-keyout',
      'w.key',
      '-out',
      'weak.csr',
      '-subj',
      '/CN=w',
    );
    await openssl(files.dir, 'req', '-new', '-sha1', '-key', 'bad.key', '-out', 'sha1.csr', '-subj', '/CN=s');
    await openssl(
      files.dir,
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-521',
      '-nodes',
      '-keyout',
      'p521.key',
      '-out',
      'p521.csr',
      '-subj',
      '/CN=p',
    );
    const cases: [string, string, string][] = [
      ['tampered signature', tampered, 'invalid_csr'],
      ['RSA 1024', readFileSync(join(files.dir, 'weak.csr'), 'utf8'), 'weak_key'],
      ['SHA-1', readFileSync(join(files.dir, 'sha1.csr'), 'utf8'), 'weak_signature'],
      ['P-521', readFileSync(join(files.dir, 'p521.csr'), 'utf8'), 'key_type_not_allowed'],
      ['a certificate', pki.intermediate.certPem, 'invalid_csr'],
      ['garbage', 'hello', 'invalid_csr'],
    ];
    for (const [label, csrPem, code] of cases) {
      const answer = await twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
        method: 'POST',
        token: keyA,
        json: { csrPem },
      });
      expect({ label, status: answer.status, code: (await json(answer)).code }).toEqual({
        label,
        status: 422,
        code,
      });
    }
  });

  test("tenant isolation: tenant B's key gets 404 on every endpoint of tenant A, and sees nothing of A", async () => {
    const leaf = await pki.leaf({ cn: 'isolated' });
    const created = await json(await upload(fileForm(leaf.certPem)));
    const csr = await makeCsr(files.dir, 'iso', '/CN=iso');
    const base = `/v1/tenants/tenant-a/client-certificates`;
    const attempts: [string, Promise<Response>][] = [
      ['register', upload(fileForm((await pki.leaf({ cn: 'b-into-a' })).certPem), keyB)],
      [
        'sign',
        twoway.call('/v1/tenants/tenant-a/certificate-signing-requests', {
          method: 'POST',
          token: keyB,
          json: { csrPem: readFileSync(csr.csr, 'utf8') },
        }),
      ],
      ['list', twoway.call(base, { token: keyB })],
      ['get', twoway.call(`${base}/${created.id}`, { token: keyB })],
      ['revoke', twoway.call(`${base}/${created.id}/revoke`, { method: 'POST', token: keyB })],
      ['delete', twoway.call(`${base}/${created.id}`, { method: 'DELETE', token: keyB })],
      // A's id under B's own path is not found either.
      [
        'get via own path',
        twoway.call(`/v1/tenants/tenant-b/client-certificates/${created.id}`, { token: keyB }),
      ],
      [
        'revoke via own path',
        twoway.call(`/v1/tenants/tenant-b/client-certificates/${created.id}/revoke`, {
          method: 'POST',
          token: keyB,
        }),
      ],
      [
        'delete via own path',
        twoway.call(`/v1/tenants/tenant-b/client-certificates/${created.id}`, {
          method: 'DELETE',
          token: keyB,
        }),
      ],
    ];
    for (const [label, attempt] of attempts) {
      expect({ label, status: (await attempt).status }).toEqual({ label, status: 404 });
    }
    const own = await json(await twoway.call(`${base}/${created.id}`, { token: keyA }));
    expect(own.status).toBe('active');
    const listB = (await (
      await twoway.call('/v1/tenants/tenant-b/client-certificates', { token: keyB })
    ).json()) as {
      items: View[];
    };
    expect(listB.items.map((i) => i.id)).not.toContain(created.id);
  });

  test('the OpenAPI document describes the new routes', async () => {
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const [path, method] of [
      ['/v1/tenants/{tenant}/client-certificates', 'post'],
      ['/v1/tenants/{tenant}/client-certificates', 'get'],
      ['/v1/tenants/{tenant}/client-certificates/{id}', 'get'],
      ['/v1/tenants/{tenant}/client-certificates/{id}', 'delete'],
      ['/v1/tenants/{tenant}/client-certificates/{id}/revoke', 'post'],
      ['/v1/tenants/{tenant}/certificate-signing-requests', 'post'],
      ['/v1/ca/certificates', 'get'],
      ['/v1/ca/crl', 'get'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(doc.components.schemas.ClientCertificate).toBeDefined();
    expect(doc.components.schemas.IssuedClientCertificate).toBeDefined();
  });

  function databaseText(): Promise<string> {
    return databaseTextOf(backend.name, twoway.dataDir, twoway.config.databaseUrl);
  }
});
