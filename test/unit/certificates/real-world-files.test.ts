/**
 * Files as users really have them: saved by Notepad, issued with narrow key usages, kept in Java
 * keystores, exported without a MAC.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, test } from 'vitest';
import { readIdentity, readPkcs12 } from '../../../src/certificates/index.js';
import { readCertificateInput } from '../../../src/client-certificates/upload.js';
import { type CertKey, makePki, type TestPki, tempDir } from '../../fixtures/pki.js';
import { codeOf, errorCodeOf, p12With } from './helpers.js';

let pki: TestPki;
let leaf: CertKey;
const now = () => new Date();
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

beforeAll(async () => {
  pki = await makePki('Real World');
  leaf = await pki.leaf({ cn: 'real.client.example' });
});

describe('a UTF-8 byte-order mark (Windows Notepad) hides nothing', () => {
  test('a bundle, key first, saved with a BOM', () => {
    const file = Buffer.concat([
      BOM,
      Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${pki.intermediate.certPem}`),
    ]);
    expect(readIdentity({ file }, { now: now() }).summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
  });

  test('separate certificate, key and chain parts, each saved with a BOM', () => {
    const upload = {
      certificate: Buffer.concat([BOM, Buffer.from(leaf.certPem)]),
      privateKey: Buffer.concat([BOM, Buffer.from(leaf.keyPem)]),
      chain: Buffer.concat([BOM, Buffer.from(pki.intermediate.certPem)]),
    };
    const identity = readIdentity(upload, { now: now() });
    expect(identity.summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
    expect(identity.chain).toHaveLength(1);
  });
});

describe('key usage', () => {
  test('digital_signature_not_allowed: a leaf whose keyUsage lacks digitalSignature', async () => {
    const file = (c: CertKey) => ({ file: Buffer.from(`${c.certPem}\n${c.keyPem}`) });
    const encipherOnly = await pki.leaf({
      cn: 'key encipherment only',
      key: 'rsa2048',
      keyUsage: KeyUsageFlags.keyEncipherment,
    });
    expect(codeOf(() => readIdentity(file(encipherOnly), { now: now() }))).toBe(
      'digital_signature_not_allowed',
    );
    const agreement = await pki.leaf({ cn: 'key agreement only', keyUsage: KeyUsageFlags.keyAgreement });
    expect(codeOf(() => readIdentity(file(agreement), { now: now() }))).toBe('digital_signature_not_allowed');
    const signing = await pki.leaf({ cn: 'signing', keyUsage: KeyUsageFlags.digitalSignature });
    expect(codeOf(() => readIdentity(file(signing), { now: now() }))).toBe('ok');
  });
});

describe('Java keystores', () => {
  /** Runs keytool with the store password from the environment, never argv. */
  const keytool = (args: string[]) =>
    execFileSync('keytool', [...args, '-storepass:env', 'STOREPASS'], {
      env: { ...process.env, STOREPASS: 'changeit' },
      stdio: 'pipe',
    });

  test('JKS and JCEKS get java_keystore with the keytool command, and that command works', () => {
    const { dir, cleanup } = tempDir('twoway-jks-');
    try {
      for (const type of ['JKS', 'JCEKS']) {
        const store = `${dir}/client.${type.toLowerCase()}`;
        keytool([
          '-genkeypair',
          '-storetype',
          type,
          '-keystore',
          store,
          '-alias',
          'client',
          '-keyalg',
          'EC',
          '-groupname',
          'secp256r1',
          '-dname',
          'CN=java client',
          '-validity',
          '2',
          '-keypass:env',
          'STOREPASS',
        ]);
        const file = readFileSync(store);
        expect(file.readUInt32BE(0)).toBe(type === 'JKS' ? 0xfeedfeed : 0xcececece);
        expect(codeOf(() => readIdentity({ file, password: 'changeit' }, { now: now() }))).toBe(
          'java_keystore',
        );
        expect(codeOf(() => readIdentity({ privateKey: file }, { now: now() }))).toBe('java_keystore');
        expect(codeOf(() => readPkcs12(file, 'changeit'))).toBe('java_keystore');
        expect(errorCodeOf(() => readCertificateInput(file))).toBe('java_keystore');
        // The advice in the message: keytool -importkeystore ... -deststoretype PKCS12.
        const p12 = `${dir}/out-${type}.p12`;
        keytool([
          '-importkeystore',
          '-srckeystore',
          store,
          '-srcstoretype',
          type,
          '-srcstorepass:env',
          'STOREPASS',
          '-destkeystore',
          p12,
          '-deststoretype',
          'PKCS12',
        ]);
        const identity = readIdentity({ file: readFileSync(p12), password: 'changeit' }, { now: now() });
        expect(identity.summary.subject).toBe('CN=java client');
      }
    } finally {
      cleanup();
    }
  }, 120_000); // four JVM starts
});

describe('PKCS#12 files holding only a key or only certificates', () => {
  // With the right password, a file without a MAC answers what its MAC'd equivalent answers.
  test.each([
    ['default (AES-256)', []],
    ['-legacy (RC2-40, 3DES)', ['-legacy']],
    ['unencrypted', ['-keypbe', 'NONE', '-certpbe', 'NONE']],
    ['AES-256 certificates', ['-certpbe', 'AES-256-CBC']],
  ])('%s, with and without a MAC', (_name, options) => {
    for (const mac of [[], ['-nomac']]) {
      const certOnly = p12With({ certPem: leaf.certPem }, 'pw', [...options, ...mac]);
      const keyOnly = p12With({ keyPem: leaf.keyPem }, 'pw', [...options, ...mac]);
      expect(
        codeOf(() => readIdentity({ file: certOnly, password: 'pw' }, { now: now() })),
        `${mac}`,
      ).toBe('no_private_key');
      expect(
        codeOf(() => readIdentity({ file: keyOnly, password: 'pw' }, { now: now() })),
        `${mac}`,
      ).toBe('no_certificate');
    }
  });
});
