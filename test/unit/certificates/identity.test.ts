import { randomBytes, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { readIdentity, readPkcs12 } from '../../../src/certificates/index.js';
import { type CertKey, type KeyKind, keyEncodings, makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf, DAY_MS, errorOf, issue, joinPkcs12, openssl, p12, p12With, selfSigned } from './helpers.js';

let pki: TestPki;
const leaves = new Map<KeyKind, CertKey>();
const now = () => new Date();

beforeAll(async () => {
  pki = await makePki('Identity Test');
  for (const key of ['rsa2048', 'rsa3072', 'ec256', 'ec384', 'ec521', 'ed25519'] as KeyKind[]) {
    leaves.set(key, await pki.leaf({ cn: `${key}.client.example`, key, dns: [`${key}.client.example`] }));
  }
});

const SUPPORTED: { kind: KeyKind; keyType: string; keySize?: number; curve?: string }[] = [
  { kind: 'rsa2048', keyType: 'RSA', keySize: 2048 },
  { kind: 'rsa3072', keyType: 'RSA', keySize: 3072 },
  { kind: 'ec256', keyType: 'EC', keySize: 256, curve: 'P-256' },
  { kind: 'ec384', keyType: 'EC', keySize: 384, curve: 'P-384' },
  { kind: 'ec521', keyType: 'EC', keySize: 521, curve: 'P-521' },
  { kind: 'ed25519', keyType: 'Ed25519' },
];

function expectIdentity(
  identity: ReturnType<typeof readIdentity>,
  leaf: CertKey,
  spec: (typeof SUPPORTED)[number],
) {
  expect(identity.summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
  expect(identity.summary.keyType).toBe(spec.keyType);
  expect(identity.summary.keySize).toBe(spec.keySize);
  expect(identity.summary.curve).toBe(spec.curve);
  expect(identity.leaf.checkPrivateKey(identity.privateKey)).toBe(true);
  expect(identity.chain.map((c) => c.fingerprint256)).toEqual([
    new X509Certificate(pki.intermediate.certPem).fingerprint256,
  ]);
  expect(identity.chainSummary).toEqual([
    expect.objectContaining({ subject: 'CN=Identity Test Intermediate', issuer: 'CN=Identity Test Root' }),
  ]);
  const pemCerts = identity.certificatesPem.match(/-----BEGIN CERTIFICATE-----/g);
  expect(pemCerts).toHaveLength(2);
  expect(new X509Certificate(identity.certificatesPem).fingerprint256).toBe(identity.leaf.fingerprint256);
}

describe('readIdentity accepts every supported key type', () => {
  test.each(SUPPORTED.map((s) => [s.kind, s] as const))(
    '%s in a modern PKCS#12 (AES-256, SHA-256 MAC)',
    (_k, spec) => {
      const leaf = leaves.get(spec.kind)!;
      const file = p12(leaf, [pki.intermediate, pki.root], 'modern pass');
      expectIdentity(readIdentity({ file, password: 'modern pass' }, { now: now() }), leaf, spec);
    },
  );

  test.each(SUPPORTED.map((s) => [s.kind, s] as const))(
    '%s in a legacy PKCS#12 (RC2-40, 3DES, SHA-1 MAC)',
    (_k, spec) => {
      const leaf = leaves.get(spec.kind)!;
      const file = p12(leaf, [pki.root, pki.intermediate], 'legacy pass', { legacy: true });
      expectIdentity(readIdentity({ file, password: 'legacy pass' }, { now: now() }), leaf, spec);
    },
  );

  test.each(SUPPORTED.map((s) => [s.kind, s] as const))('%s in one PEM bundle, chain first', (_k, spec) => {
    const leaf = leaves.get(spec.kind)!;
    const file = Buffer.from(
      `${pki.root.certPem}\n${pki.intermediate.certPem}\n${leaf.keyPem}${leaf.certPem}`,
    );
    expectIdentity(readIdentity({ file }, { now: now() }), leaf, spec);
  });

  test.each(SUPPORTED.map((s) => [s.kind, s] as const))(
    '%s as separate certificate, key and chain parts',
    (_k, spec) => {
      const leaf = leaves.get(spec.kind)!;
      const upload = {
        certificate: Buffer.from(leaf.certPem),
        privateKey: Buffer.from(leaf.keyPem),
        chain: Buffer.from(`${pki.intermediate.certPem}\n`),
      };
      expectIdentity(readIdentity(upload, { now: now() }), leaf, spec);
    },
  );
});

describe('readIdentity reads every key encoding', () => {
  const PW = { PW: 'k3y pass' };
  /** Key encodings, the key kinds they apply to, and how openssl makes them from PKCS#8 PEM. */
  const encodings: [string, (kind: KeyKind) => boolean, (keyPem: string) => Buffer, string?][] = [
    [
      'PKCS#1 PEM (openssl pkey -traditional)',
      (k) => k.startsWith('rsa'),
      (key) => openssl(['pkey', '-traditional'], key),
    ],
    ['SEC1 PEM (openssl ec)', (k) => k.startsWith('ec'), (key) => openssl(['ec'], key)],
    [
      'PKCS#8 DER (openssl pkey -outform DER)',
      () => true,
      (key) => openssl(['pkey', '-outform', 'DER'], key),
    ],
    [
      'encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc)',
      () => true,
      (key) => openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-passout', 'env:PW'], key, PW),
      'k3y pass',
    ],
    [
      'encrypted PKCS#8 DER, PKCS#12 3DES (openssl pkcs8 -v1 PBE-SHA1-3DES)',
      () => true,
      (key) =>
        openssl(
          ['pkcs8', '-topk8', '-v1', 'PBE-SHA1-3DES', '-outform', 'DER', '-passout', 'env:PW'],
          key,
          PW,
        ),
      'k3y pass',
    ],
    [
      'traditional encrypted PEM (openssl pkey -traditional -aes256)',
      (k) => k.startsWith('rsa') || k.startsWith('ec'),
      (key) => openssl(['pkey', '-traditional', '-aes256', '-passout', 'env:PW'], key, PW),
      'k3y pass',
    ],
  ];
  const cases = SUPPORTED.flatMap((spec) =>
    encodings
      .filter(([, applies]) => applies(spec.kind))
      .map(([name, , make, password]) => [`${spec.kind} as ${name}`, { spec, make, password }] as const),
  );

  test.each(cases)('%s', (_name, { spec, make, password }) => {
    const leaf = leaves.get(spec.kind)!;
    const key = make(leaf.keyPem);
    const upload = {
      certificate: Buffer.from(leaf.certPem),
      privateKey: key,
      chain: Buffer.from(pki.intermediate.certPem),
      ...(password ? { password } : {}),
    };
    expectIdentity(readIdentity(upload, { now: now() }), leaf, spec);
    if (password) {
      expect(codeOf(() => readIdentity({ ...upload, password: 'wrong' }, { now: now() }))).toBe(
        'bad_password',
      );
      const { password: _omit, ...withoutPassword } = upload;
      expect(codeOf(() => readIdentity(withoutPassword, { now: now() }))).toBe('bad_password');
    }
  });

  test('the encodings are what their names say', () => {
    const rsa = leaves.get('rsa2048')!.keyPem;
    const ec = leaves.get('ec256')!.keyPem;
    expect(openssl(['pkey', '-traditional'], rsa).toString()).toContain('BEGIN RSA PRIVATE KEY');
    expect(openssl(['ec'], ec).toString()).toContain('BEGIN EC PRIVATE KEY');
    const traditional = openssl(['pkey', '-traditional', '-aes256', '-passout', 'env:PW'], ec, PW).toString();
    expect(traditional).toContain('BEGIN EC PRIVATE KEY');
    expect(traditional).toContain('Proc-Type: 4,ENCRYPTED');
  });

  test('a CRLF PEM bundle with text around the blocks', () => {
    const leaf = leaves.get('ec256')!;
    const text =
      `Bag Attributes\r\n    friendlyName: x\r\n${leaf.certPem}\r\nsome text\r\n${leaf.keyPem}`.replace(
        /\r?\n/g,
        '\r\n',
      );
    expect(readIdentity({ file: Buffer.from(text) }, { now: now() }).summary.fingerprintSha256).toBe(
      leaf.fingerprintSha256,
    );
  });
});

describe('readIdentity refuses', () => {
  test('unsupported_format: random bytes, garbage PEM, a truncated PKCS#12, nothing', () => {
    const file = p12(leaves.get('ec256')!, [pki.intermediate], 'pw');
    expect(codeOf(() => readIdentity({ file: randomBytes(2048), password: 'pw' }, { now: now() }))).toBe(
      'unsupported_format',
    );
    expect(
      codeOf(() => readIdentity({ file: file.subarray(0, file.length / 2), password: 'pw' }, { now: now() })),
    ).toBe('unsupported_format');
    const garbage = Buffer.from(
      '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n',
    );
    expect(codeOf(() => readIdentity({ file: garbage }, { now: now() }))).toBe('unsupported_format');
    const wellFormedNonsense = Buffer.from(
      `-----BEGIN CERTIFICATE-----\n${randomBytes(300).toString('base64')}\n-----END CERTIFICATE-----\n`,
    );
    expect(codeOf(() => readIdentity({ file: wellFormedNonsense }, { now: now() }))).toBe(
      'unsupported_format',
    );
    expect(codeOf(() => readIdentity({ file: Buffer.from('just some text') }, { now: now() }))).toBe(
      'unsupported_format',
    );
    expect(codeOf(() => readIdentity({}, { now: now() }))).toBe('unsupported_format');
  });

  test('bad_password: wrong and missing PKCS#12 password', () => {
    const file = p12(leaves.get('ec256')!, [], 'right');
    expect(codeOf(() => readIdentity({ file, password: 'wrong' }, { now: now() }))).toBe('bad_password');
    expect(codeOf(() => readIdentity({ file }, { now: now() }))).toBe('bad_password');
    const legacy = p12(leaves.get('rsa2048')!, [], 'right', { legacy: true });
    expect(codeOf(() => readIdentity({ file: legacy, password: 'Right' }, { now: now() }))).toBe(
      'bad_password',
    );
  });

  test('no_private_key: a DER certificate alone, a PEM certificate alone, a certificate-only PKCS#12', () => {
    const leaf = leaves.get('ec256')!;
    const der = new X509Certificate(leaf.certPem).raw;
    expect(codeOf(() => readIdentity({ file: der }, { now: now() }))).toBe('no_private_key');
    expect(codeOf(() => readIdentity({ certificate: Buffer.from(leaf.certPem) }, { now: now() }))).toBe(
      'no_private_key',
    );
    const certOnly = p12With({ certPem: leaf.certPem }, 'pw');
    expect(codeOf(() => readIdentity({ file: certOnly, password: 'pw' }, { now: now() }))).toBe(
      'no_private_key',
    );
  });

  test('no_certificate: a key alone, a key-only PKCS#12', () => {
    const leaf = leaves.get('ec256')!;
    expect(codeOf(() => readIdentity({ privateKey: Buffer.from(leaf.keyPem) }, { now: now() }))).toBe(
      'no_certificate',
    );
    const keyOnly = p12With({ keyPem: leaf.keyPem }, 'pw');
    expect(codeOf(() => readIdentity({ file: keyOnly, password: 'pw' }, { now: now() }))).toBe(
      'no_certificate',
    );
  });

  test('multiple_private_keys: two keys in one PEM; the same key twice is one key', () => {
    const a = leaves.get('ec256')!;
    const b = leaves.get('ec384')!;
    const two = Buffer.from(`${a.certPem}\n${a.keyPem}${b.keyPem}`);
    expect(codeOf(() => readIdentity({ file: two }, { now: now() }))).toBe('multiple_private_keys');
    const same = {
      file: Buffer.from(`${a.certPem}\n${a.keyPem}`),
      privateKey: openssl(['pkey', '-outform', 'DER'], a.keyPem),
    };
    expect(codeOf(() => readIdentity(same, { now: now() }))).toBe('ok');
  });

  test('multiple_private_keys: a PKCS#12 holding two keys', () => {
    // openssl writes one key per file; two -nomac files are joined into one AuthenticatedSafe.
    const a = leaves.get('ec256')!;
    const b = leaves.get('rsa2048')!;
    const file = joinPkcs12([p12With(a, 'pw', ['-nomac']), p12With(b, 'pw', ['-nomac'])]);
    expect(readPkcs12(file, 'pw').privateKeys).toHaveLength(2);
    expect(codeOf(() => readIdentity({ file, password: 'pw' }, { now: now() }))).toBe(
      'multiple_private_keys',
    );
  });

  test("key_mismatch: a certificate with somebody else's key", () => {
    const upload = {
      certificate: Buffer.from(leaves.get('ec256')!.certPem),
      privateKey: Buffer.from(leaves.get('ec384')!.keyPem),
    };
    expect(codeOf(() => readIdentity(upload, { now: now() }))).toBe('key_mismatch');
  });

  test('certificate_expired and certificate_not_yet_valid for the leaf, at the injected clock', async () => {
    const expired = await pki.leaf({
      cn: 'expired',
      notBefore: new Date(Date.now() - 10 * DAY_MS),
      notAfter: new Date(Date.now() - DAY_MS),
    });
    const future = await pki.leaf({
      cn: 'future',
      notBefore: new Date(Date.now() + DAY_MS),
      notAfter: new Date(Date.now() + 10 * DAY_MS),
    });
    const upload = (c: CertKey) => ({ file: Buffer.from(`${c.certPem}\n${c.keyPem}`) });
    expect(codeOf(() => readIdentity(upload(expired), { now: now() }))).toBe('certificate_expired');
    expect(codeOf(() => readIdentity(upload(future), { now: now() }))).toBe('certificate_not_yet_valid');
    // The same files are fine at a clock inside their validity: the check uses options.now.
    expect(codeOf(() => readIdentity(upload(expired), { now: new Date(Date.now() - 5 * DAY_MS) }))).toBe(
      'ok',
    );
    expect(codeOf(() => readIdentity(upload(future), { now: new Date(Date.now() + 5 * DAY_MS) }))).toBe('ok');
  });

  test.each([
    ['certificate_expired', -10, -1],
    ['certificate_not_yet_valid', 1, 10],
  ] as const)('%s for an intermediate outside its validity', async (code, fromDays, toDays) => {
    const at = (days: number) => new Date(Date.now() + days * DAY_MS);
    const ca = await issue(pki.root, {
      cn: `Intermediate ${code}`,
      ca: true,
      notBefore: at(fromDays),
      notAfter: at(toDays),
    });
    const leaf = await pki.leaf({ cn: `under ${code}`, issuer: ca });
    const failure = errorOf(() =>
      readIdentity({ file: Buffer.from(`${leaf.certPem}\n${leaf.keyPem}${ca.certPem}`) }, { now: now() }),
    );
    expect(failure.code).toBe(code);
    expect(failure.message).toContain(`chain certificate "CN=Intermediate ${code}"`);
  });

  test('weak_key: RSA 1024', async () => {
    const leaf = await pki.leaf({ cn: 'rsa1024', key: 'rsa1024' });
    expect(codeOf(() => readIdentity({ file: p12(leaf, [], 'pw'), password: 'pw' }, { now: now() }))).toBe(
      'weak_key',
    );
  });

  test.each([
    ['Ed448', ['-algorithm', 'ED448']],
    ['RSA-PSS', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['EC secp256k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']],
    [
      'EC P-256, explicit parameters',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:explicit'],
    ],
  ])('unsupported_key_type: %s (self-signed with openssl req)', (_name, genpkey) => {
    const { keyPem, certPem } = selfSigned(genpkey);
    expect(codeOf(() => readIdentity({ file: Buffer.from(certPem + keyPem) }, { now: now() }))).toBe(
      'unsupported_key_type',
    );
  });

  test('weak_signature: a leaf signed with SHA-1; a SHA-256 leaf under the same CA is fine', async () => {
    const sha1 = await pki.leaf({ cn: 'sha1', key: 'rsa2048', hash: 'SHA-1' });
    expect(
      codeOf(() =>
        readIdentity({ file: p12(sha1, [pki.intermediate], 'pw'), password: 'pw' }, { now: now() }),
      ),
    ).toBe('weak_signature');
  });

  test('client_auth_not_allowed: serverAuth only; absent EKU, both, and anyExtendedKeyUsage pass', async () => {
    const file = (c: CertKey) => ({ file: Buffer.from(`${c.certPem}\n${c.keyPem}`) });
    const server = await pki.leaf({ cn: 'server only', eku: 'serverAuth' });
    expect(codeOf(() => readIdentity(file(server), { now: now() }))).toBe('client_auth_not_allowed');
    const noEku = await pki.leaf({ cn: 'no eku', eku: 'none' });
    expect(codeOf(() => readIdentity(file(noEku), { now: now() }))).toBe('ok');
    const both = await pki.leaf({ cn: 'both', eku: 'both' });
    expect(codeOf(() => readIdentity(file(both), { now: now() }))).toBe('ok');
    const validity = { notBefore: new Date(Date.now() - DAY_MS), notAfter: new Date(Date.now() + DAY_MS) };
    const any = await issue(pki.intermediate, { cn: 'any', eku: ['2.5.29.37.0'], ...validity });
    expect(codeOf(() => readIdentity(file(any), { now: now() }))).toBe('ok');
    const codeSigning = await issue(pki.intermediate, {
      cn: 'code signing',
      eku: ['1.3.6.1.5.5.7.3.3'],
      ...validity,
    });
    expect(codeOf(() => readIdentity(file(codeSigning), { now: now() }))).toBe('client_auth_not_allowed');
  });

  test('error messages hold neither the password nor key material', () => {
    const leaf = leaves.get('rsa2048')!;
    const secret = 'S3cret-Pa55word';
    const encryptedKey = openssl(
      ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-passout', 'env:PW'],
      leaf.keyPem,
      { PW: secret },
    );
    const failures = [
      errorOf(() => readIdentity({ file: p12(leaf, [], secret), password: `${secret}x` }, { now: now() })),
      errorOf(() =>
        readIdentity(
          { certificate: Buffer.from(leaf.certPem), privateKey: encryptedKey, password: `${secret}x` },
          { now: now() },
        ),
      ),
      errorOf(() =>
        readIdentity(
          { certificate: Buffer.from(leaves.get('ec256')!.certPem), privateKey: Buffer.from(leaf.keyPem) },
          { now: now() },
        ),
      ),
      errorOf(() =>
        readIdentity({ file: Buffer.from(`${leaf.keyPem}${leaves.get('ec256')!.keyPem}`) }, { now: now() }),
      ),
    ];
    expect(failures.map((f) => f.code)).toEqual([
      'bad_password',
      'bad_password',
      'key_mismatch',
      'multiple_private_keys',
    ]);
    for (const failure of failures) {
      expect(failure.message).not.toContain(secret);
      for (const encoding of keyEncodings(leaf.keyPem)) expect(failure.message).not.toContain(encoding);
      expect(failure.message).not.toContain('-----BEGIN');
    }
  });
});
