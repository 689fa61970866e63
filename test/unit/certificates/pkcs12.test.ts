import { createHash, createHmac, pbkdf2Sync, randomBytes, X509Certificate } from 'node:crypto';
import { MacData } from '@peculiar/asn1-pfx';
import { DigestInfo } from '@peculiar/asn1-rsa';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import forge from 'node-forge';
import { beforeAll, describe, expect, test } from 'vitest';
import { Pbkdf2Params, Pbmac1Params, Pfx } from '../../../src/certificates/asn1.js';
import { readPkcs12 } from '../../../src/certificates/index.js';
import { type HashName, pkcs12Kdf, WorkBudget } from '../../../src/certificates/pbe.js';
import { type CertKey, makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf, p12, p12With } from './helpers.js';

let pki: TestPki;
let rsa: CertKey;
let ec: CertKey;
beforeAll(async () => {
  pki = await makePki('PKCS12 Test');
  rsa = await pki.leaf({ cn: 'rsa.p12.example', key: 'rsa2048' });
  ec = await pki.leaf({ cn: 'ec.p12.example', key: 'ec256' });
});

const fingerprint = (c: CertKey) => new X509Certificate(c.certPem).fingerprint256;

describe('readPkcs12 reads what openssl pkcs12 -export writes', () => {
  test.each([
    ['modern default (PBES2 AES-256, SHA-256 MAC)', []],
    ['-legacy (RC2-40 certificates, 3DES key, SHA-1 MAC)', ['-legacy']],
    ['-legacy -certpbe PBE-SHA1-RC2-128', ['-legacy', '-certpbe', 'PBE-SHA1-RC2-128']],
    ['-legacy -keypbe PBE-SHA1-2DES', ['-legacy', '-keypbe', 'PBE-SHA1-2DES']],
    ['-descert (3DES certificates)', ['-descert']],
    ['AES-128 certificates, AES-192 key', ['-certpbe', 'AES-128-CBC', '-keypbe', 'AES-192-CBC']],
    ['-macalg sha1', ['-macalg', 'sha1']],
    ['-macalg sha384', ['-macalg', 'sha384']],
    ['-macalg sha512', ['-macalg', 'sha512']],
    ['no encryption, MAC only (-keypbe NONE -certpbe NONE)', ['-keypbe', 'NONE', '-certpbe', 'NONE']],
    ['no MAC (-nomac)', ['-nomac']],
  ])('%s', (_name, options) => {
    const file = p12With(
      { certPem: rsa.certPem, keyPem: rsa.keyPem, chainPem: `${pki.intermediate.certPem}\n` },
      'Pässwörd ☺',
      [...options, '-name', 'My Identity ☺'],
    );
    const contents = readPkcs12(file, 'Pässwörd ☺');
    expect(contents.privateKeys).toHaveLength(1);
    expect(contents.certificates.map((c) => c.certificate.fingerprint256)).toEqual([
      fingerprint(rsa),
      fingerprint(pki.intermediate),
    ]);
    const [key] = contents.privateKeys;
    const [leaf] = contents.certificates;
    expect(leaf?.certificate.checkPrivateKey(key!.key)).toBe(true);
    // OpenSSL names the key and its certificate, and ties them with localKeyId = SHA-1 of the certificate.
    expect(key?.friendlyName).toBe('My Identity ☺');
    expect(leaf?.friendlyName).toBe('My Identity ☺');
    const sha1 = createHash('sha1').update(new X509Certificate(rsa.certPem).raw).digest('hex');
    expect(key?.localKeyId).toBe(sha1);
    expect(leaf?.localKeyId).toBe(sha1);
    expect(codeOf(() => readPkcs12(file, 'Passwörd ☺'))).toBe('bad_password');
    expect(codeOf(() => readPkcs12(file, null))).toBe('bad_password');
  });

  test('EC and Ed25519 keys come out as KeyObjects of their type', async () => {
    const ed = await pki.leaf({ cn: 'ed', key: 'ed25519' });
    expect(readPkcs12(p12(ec, [], 'pw'), 'pw').privateKeys[0]?.key.asymmetricKeyType).toBe('ec');
    expect(readPkcs12(p12(ed, [], 'pw', { legacy: true }), 'pw').privateKeys[0]?.key.asymmetricKeyType).toBe(
      'ed25519',
    );
  });
});

describe('the two empty passwords', () => {
  test('a file made with the empty string opens when the caller gives "" or null', () => {
    const file = p12(ec, [], '', { legacy: true });
    expect(macPassword(file)).toEqual(['']);
    expect(readPkcs12(file, '').privateKeys).toHaveLength(1);
    expect(readPkcs12(file, null).privateKeys).toHaveLength(1);
    expect(codeOf(() => readPkcs12(file, ' '))).toBe('bad_password');
  });

  test('a file MACed with the NULL password (node-forge writes those) opens with null or ""', () => {
    const key = forge.pki.privateKeyFromPem(rsa.keyPem);
    const cert = forge.pki.certificateFromPem(rsa.certPem);
    const asn1 = forge.pkcs12.toPkcs12Asn1(key, [cert], null as unknown as string, { algorithm: '3des' });
    const file = Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
    expect(macPassword(file)).toEqual([null]);
    expect(readPkcs12(file, null).privateKeys).toHaveLength(1);
    expect(readPkcs12(file, '').privateKeys).toHaveLength(1);
    expect(codeOf(() => readPkcs12(file, 'x'))).toBe('bad_password');
  });
});

describe('readPkcs12 refuses', () => {
  test('unsupported_format: random bytes, half a file, a certificate, nothing', () => {
    const file = p12(ec, [pki.intermediate], 'pw');
    expect(codeOf(() => readPkcs12(randomBytes(1024), 'pw'))).toBe('unsupported_format');
    expect(codeOf(() => readPkcs12(file.subarray(0, Math.floor(file.length / 2)), 'pw'))).toBe(
      'unsupported_format',
    );
    expect(codeOf(() => readPkcs12(new X509Certificate(ec.certPem).raw, 'pw'))).toBe('unsupported_format');
    expect(codeOf(() => readPkcs12(Buffer.alloc(0), 'pw'))).toBe('unsupported_format');
  });

  test('bad_password when the MAC password opens the MAC but not the encryption', () => {
    // A MAC-less file whose bags are encrypted under another password.
    const file = p12With(ec, 'one', ['-nomac']);
    expect(codeOf(() => readPkcs12(file, 'two'))).toBe('bad_password');
  });

  test('unsupported_format for iteration counts above the limits, before any work is done', () => {
    const mac = p12With(ec, 'pw', ['-iter', '1000001']);
    expect(macIterations(mac)).toBe(1_000_001);
    expect(codeOf(() => readPkcs12(mac, 'pw', new WorkBudget(0)))).toBe('unsupported_format');
    const pbkdf2 = p12With(ec, 'pw', ['-nomac', '-iter', '2000001']);
    expect(codeOf(() => readPkcs12(pbkdf2, 'pw', new WorkBudget(0)))).toBe('unsupported_format');
  });
});

describe('iteration counts the common tools write', () => {
  // `openssl pkcs12 -export -iter N` sets the MAC count to N too; 600,000 is OWASP's PBKDF2 advice.
  test.each([
    ['-iter 600000 (MAC and PBKDF2)', ['-iter', '600000']],
    ['-iter 1000000 (MAC and PBKDF2)', ['-iter', '1000000']],
    ['-iter 1000000 -macalg sha512', ['-iter', '1000000', '-macalg', 'sha512']],
    ['-legacy -iter 200001 (PKCS#12 PBE, SHA-1 MAC)', ['-legacy', '-iter', '200001']],
  ])('%s is read within one upload budget', (_name, options) => {
    const file = p12With(ec, 'pw', options);
    const count = Number(options[options.indexOf('-iter') + 1]);
    expect(macIterations(file)).toBe(count);
    expect(readPkcs12(file, 'pw').privateKeys).toHaveLength(1);
    expect(codeOf(() => readPkcs12(file, 'wrong'))).toBe('bad_password');
  });

  test('a file without password at 1,000,000 MAC iterations costs one MAC derivation, not two', () => {
    // OpenSSL MACs "no password" with the empty string; that candidate is tried first.
    const file = p12With(ec, '', ['-iter', '1000000']);
    expect(readPkcs12(file, null).privateKeys).toHaveLength(1);
    expect(readPkcs12(file, '').privateKeys).toHaveLength(1);
  });

  test('what passes the budget is refused: -legacy -iter 1000000 needs 6 million PKCS#12 KDF rounds', () => {
    const legacy = p12With(ec, 'pw', ['-legacy', '-iter', '1000000']);
    expect(codeOf(() => readPkcs12(legacy, 'pw'))).toBe('unsupported_format');
  });
});

/** The MAC iteration count of a PKCS#12 file. */
function macIterations(file: Buffer): number | undefined {
  return AsnConvert.parse(file, Pfx).macData?.iterations;
}

describe('RFC 9579 PBMAC1', () => {
  /** Replaces the MAC of a MAC-less file with PBMAC1 (HMAC-SHA256, PBKDF2-HMAC-SHA256). */
  function pbmac1(
    file: Buffer,
    macPassword: string,
    keyLength: number | undefined,
    derivedBytes = keyLength ?? 32,
  ) {
    const pfx = AsnConvert.parse(file, Pfx);
    const content = AsnConvert.parse(pfx.authSafe.content, OctetString);
    const salt = randomBytes(16);
    const kdfParams = Object.assign(new Pbkdf2Params(), {
      salt: new OctetString(salt),
      iterationCount: 2048,
      prf: new AlgorithmIdentifier({ algorithm: '1.2.840.113549.2.9', parameters: null }),
      ...(keyLength === undefined ? {} : { keyLength }),
    });
    const params = Object.assign(new Pbmac1Params(), {
      keyDerivationFunc: new AlgorithmIdentifier({
        algorithm: '1.2.840.113549.1.5.12',
        parameters: AsnConvert.serialize(kdfParams),
      }),
      messageAuthScheme: new AlgorithmIdentifier({ algorithm: '1.2.840.113549.2.9', parameters: null }),
    });
    const key = pbkdf2Sync(Buffer.from(macPassword, 'utf8'), salt, 2048, derivedBytes, 'sha256');
    const mac = createHmac('sha256', key).update(Buffer.from(content.buffer)).digest();
    pfx.macData = new MacData({
      mac: new DigestInfo({
        digestAlgorithm: new AlgorithmIdentifier({
          algorithm: '1.2.840.113549.1.5.14',
          parameters: AsnConvert.serialize(params),
        }),
        digest: new OctetString(mac),
      }),
      macSalt: new OctetString(Buffer.from('NOT USED')),
      iterations: 1,
    });
    return Buffer.from(AsnConvert.serialize(pfx));
  }

  test('a PBMAC1 file opens with its password and not with another', () => {
    const file = pbmac1(p12With(ec, 'pw', ['-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE']), 'pw', 32);
    expect(readPkcs12(file, 'pw').privateKeys).toHaveLength(1);
    expect(codeOf(() => readPkcs12(file, 'wrong'))).toBe('bad_password');
  });

  test.each([
    ['a 20-byte key for a 32-byte HMAC', 20],
    ['a 24-byte key', 24],
    ['a 64-byte key, longer than the HMAC output', 64],
  ])('opens a file with %s (RFC 9579 leaves keyLength to the writer)', (_name, keyLength) => {
    const file = pbmac1(
      p12With(ec, 'pw', ['-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE']),
      'pw',
      keyLength,
    );
    expect(readPkcs12(file, 'pw').privateKeys).toHaveLength(1);
    expect(codeOf(() => readPkcs12(file, 'wrong'))).toBe('bad_password');
  });

  test.each([
    ['a 1-byte key (the authentication bypass: 256 keys to try)', 1],
    ['a 19-byte key, under the 20-byte floor', 19],
    ['a key length of 0', 0],
    ['no keyLength (RFC 9579 §3 requires it; its A.6 vector)', undefined],
  ])('refuses %s even with the right password', (_name, keyLength) => {
    const file = pbmac1(
      p12With(ec, 'pw', ['-nomac', '-keypbe', 'NONE', '-certpbe', 'NONE']),
      'pw',
      keyLength,
      keyLength || 32,
    );
    expect(codeOf(() => readPkcs12(file, 'pw'))).toBe('unsupported_format');
  });
});

/** node-forge's PKCS#12 KDF, which @types/node-forge does not declare. */
const forgePbe = (forge as unknown as { pbe: { generatePkcs12Key: GeneratePkcs12Key } }).pbe;
type GeneratePkcs12Key = (
  password: string | null,
  salt: forge.util.ByteStringBuffer,
  id: number,
  iterations: number,
  length: number,
  md: forge.md.MessageDigest,
) => forge.util.ByteStringBuffer;

/** Which empty password the classic MAC of `file` was made with, by recomputing it. */
function macPassword(file: Buffer): (string | null)[] {
  const pfx = AsnConvert.parse(file, Pfx);
  const mac = pfx.macData!;
  const content = Buffer.from(AsnConvert.parse(pfx.authSafe.content, OctetString).buffer);
  const hash = mac.mac.digestAlgorithm.algorithm === '1.3.14.3.2.26' ? 'sha1' : 'sha256';
  return [null, ''].filter((password) => {
    const key = pkcs12Kdf(
      password,
      Buffer.from(mac.macSalt.buffer),
      3,
      mac.iterations,
      hash === 'sha1' ? 20 : 32,
      hash,
      new WorkBudget(),
    );
    return createHmac(hash, key).update(content).digest().equals(Buffer.from(mac.mac.digest.buffer));
  });
}

describe('the PKCS#12 key-derivation function (RFC 7292 Appendix B)', () => {
  const forgeMd = {
    sha1: () => forge.md.sha1.create(),
    sha256: () => forge.md.sha256.create(),
    sha512: () => forge.md.sha512.create(),
  };

  test.each([
    ['sha1', null, 1, 1, 24],
    ['sha1', '', 2, 2048, 8],
    ['sha1', 'pässwörd', 3, 2048, 20],
    ['sha256', 'password', 3, 1000, 32],
    ['sha256', null, 1, 7, 70],
    ['sha512', 'x', 3, 100, 64],
  ] as const)(
    '%s, password %j, id %i, %i iterations, %i bytes: same as node-forge',
    (hash, password, id, iterations, length) => {
      const salt = Buffer.from('0a58cf64530d823f', 'hex');
      const ours = pkcs12Kdf(password, salt, id, iterations, length, hash as HashName, new WorkBudget());
      const theirs = forgePbe.generatePkcs12Key(
        password as string,
        forge.util.createBuffer(salt.toString('binary')),
        id,
        iterations,
        length,
        forgeMd[hash](),
      );
      expect(ours.toString('hex')).toBe(forge.util.bytesToHex(theirs.getBytes()));
    },
  );

  test('stops when the work budget is spent', () => {
    const budget = new WorkBudget(6 * 1000);
    pkcs12Kdf('pw', Buffer.alloc(8), 1, 1000, 20, 'sha1', budget);
    expect(codeOf(() => pkcs12Kdf('pw', Buffer.alloc(8), 1, 1000, 20, 'sha1', budget))).toBe(
      'unsupported_format',
    );
  });
});
