import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import {
  checkKeyPolicy,
  describeKey,
  parsePemBlocks,
  privateKeyFromDer,
  privateKeyFromPem,
  readIdentity,
} from '../../../src/certificates/index.js';
import { WorkBudget } from '../../../src/certificates/pbe.js';
import { codeOf, openssl, withFiles } from './helpers.js';

/** `openssl genpkey` with the given options, as PEM (PKCS#8). */
const genpkey = (...args: string[]) => openssl(['genpkey', ...args]).toString();

/** Reads a one-block PEM key as the identity upload does. */
function fromPem(pem: string | Buffer, password?: string) {
  const [block] = parsePemBlocks(pem.toString());
  return privateKeyFromPem(block!, password);
}

function dsaKey(): string {
  return withFiles({}, (file) => {
    openssl([
      'genpkey',
      '-genparam',
      '-algorithm',
      'DSA',
      '-pkeyopt',
      'dsa_paramgen_bits:2048',
      '-out',
      file('params.pem'),
    ]);
    return openssl(['genpkey', '-paramfile', file('params.pem')]).toString();
  });
}

describe('the key policy', () => {
  test.each([
    [
      'RSA 2048',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      { keyType: 'RSA', keySize: 2048 },
    ],
    [
      'RSA 4096',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:4096'],
      { keyType: 'RSA', keySize: 4096 },
    ],
    [
      'EC P-256',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      { keyType: 'EC', keySize: 256, curve: 'P-256' },
    ],
    [
      'EC P-384',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      { keyType: 'EC', keySize: 384, curve: 'P-384' },
    ],
    [
      'EC P-521',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
      { keyType: 'EC', keySize: 521, curve: 'P-521' },
    ],
    ['Ed25519', ['-algorithm', 'ED25519'], { keyType: 'Ed25519' }],
  ])('accepts %s', (_name, args, description) => {
    expect(checkKeyPolicy(fromPem(genpkey(...args)))).toEqual(description);
  });

  test.each([
    ['RSA 1024', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], 'weak_key'],
    ['RSA 2047', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2047'], 'weak_key'],
    ['RSA-PSS', ['-algorithm', 'RSA-PSS', '-pkeyopt', 'rsa_keygen_bits:2048'], 'unsupported_key_type'],
    ['Ed448', ['-algorithm', 'ED448'], 'unsupported_key_type'],
    ['X25519', ['-algorithm', 'X25519'], 'unsupported_key_type'],
    ['X448', ['-algorithm', 'X448'], 'unsupported_key_type'],
    ['EC secp256k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], 'unsupported_key_type'],
    [
      'EC brainpoolP256r1',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:brainpoolP256r1'],
      'unsupported_key_type',
    ],
    [
      'EC P-256 with explicit parameters',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:explicit'],
      'unsupported_key_type',
    ],
  ])('refuses %s', (_name, args, code) => {
    expect(codeOf(() => checkKeyPolicy(fromPem(genpkey(...args))))).toBe(code);
  });

  test('refuses DSA', () => {
    expect(codeOf(() => checkKeyPolicy(fromPem(dsaKey())))).toBe('unsupported_key_type');
  });

  test('describeKey describes a short RSA key that checkKeyPolicy refuses', () => {
    const key = fromPem(genpkey('-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'));
    expect(describeKey(key)).toEqual({ keyType: 'RSA', keySize: 1024 });
  });
});

describe('private key formats', () => {
  const rsa = genpkey('-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048');
  const ec = genpkey('-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256');
  const pw = { PW: 'pass phrase' };

  test.each([
    ['PKCS#8 PEM', () => fromPem(rsa)],
    ['PKCS#1 PEM (RSA PRIVATE KEY)', () => fromPem(openssl(['pkey', '-traditional'], rsa))],
    ['SEC1 PEM (EC PRIVATE KEY)', () => fromPem(openssl(['ec'], ec))],
    ['PKCS#8 DER', () => privateKeyFromDer(openssl(['pkey', '-outform', 'DER'], rsa), undefined)],
    [
      'PKCS#1 DER',
      () => privateKeyFromDer(openssl(['rsa', '-traditional', '-outform', 'DER'], rsa), undefined),
    ],
    ['SEC1 DER', () => privateKeyFromDer(openssl(['ec', '-outform', 'DER'], ec), undefined)],
  ])('reads %s', (_name, load) => {
    expect(['rsa', 'ec']).toContain(load().asymmetricKeyType);
  });

  test.each([
    ['PBES2 AES-256-CBC', ['-v2', 'aes-256-cbc']],
    ['PBES2 AES-128-CBC, HMAC-SHA512', ['-v2', 'aes-128-cbc', '-v2prf', 'hmacWithSHA512']],
    ['PBES2 3DES', ['-v2', 'des3']],
    ['PKCS#12 PBE 3DES', ['-v1', 'PBE-SHA1-3DES']],
    ['scrypt (node:crypto decrypts it)', ['-scrypt']],
  ])('reads encrypted PKCS#8 with %s; wrong or missing password is bad_password', (_name, options) => {
    for (const outform of ['PEM', 'DER']) {
      const encrypted = openssl(
        ['pkcs8', '-topk8', ...options, '-outform', outform, '-passout', 'env:PW'],
        rsa,
        pw,
      );
      const load = (password?: string) =>
        outform === 'PEM' ? fromPem(encrypted, password) : privateKeyFromDer(encrypted, password);
      expect(load('pass phrase').asymmetricKeyType).toBe('rsa');
      expect(codeOf(() => load('pass phrasE'))).toBe('bad_password');
      expect(codeOf(() => load(''))).toBe('bad_password');
      expect(codeOf(() => load())).toBe('bad_password');
    }
  });

  test.each([
    ['AES-256-CBC', ['rsa', '-aes256', '-traditional']],
    ['DES-EDE3-CBC', ['ec', '-des3']],
  ])('reads traditional encrypted PEM (%s); wrong or missing password is bad_password', (cipher, command) => {
    const key = command[0] === 'rsa' ? rsa : ec;
    const encrypted = openssl([...command, '-passout', 'env:PW'], key, pw).toString();
    expect(encrypted).toContain(`DEK-Info: ${cipher}`);
    expect(['rsa', 'ec']).toContain(fromPem(encrypted, 'pass phrase').asymmetricKeyType);
    // Traditional encryption has no integrity check: about 1 wrong password in 256 decrypts to
    // garbage with valid padding, which OpenSSL reports as an undecodable key. All must be bad_password.
    const codes = new Set<string>();
    for (let i = 0; i < 2000; i++) codes.add(codeOf(() => fromPem(encrypted, `wrong ${i}`)));
    expect([...codes]).toEqual(['bad_password']);
    expect(codeOf(() => fromPem(encrypted))).toBe('bad_password');
  });

  test('an iteration count above the limit is refused, never handed to OpenSSL to run unbounded', () => {
    // 2,000,001 rounds: one over MAX_PBKDF2_ITERATIONS. OpenSSL itself would accept any count.
    const encrypted = openssl(
      ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-iter', '2000001', '-passout', 'env:PW'],
      rsa,
      pw,
    ).toString();
    expect(() => fromPem(encrypted, 'pass phrase')).toThrow(/above the limit of 2000000/);
    expect(codeOf(() => fromPem(encrypted, 'pass phrase'))).toBe('unsupported_format');
    const der = openssl(
      ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-iter', '2000001', '-outform', 'DER', '-passout', 'env:PW'],
      rsa,
      pw,
    );
    expect(() => privateKeyFromDer(der, 'pass phrase')).toThrow(/above the limit/);
  });

  test('the key-derivation budget given is shared: a spent one refuses the next key', () => {
    const encrypted = openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-passout', 'env:PW'], rsa, pw);
    const [block] = parsePemBlocks(encrypted.toString());
    const budget = new WorkBudget(3_000);
    expect(privateKeyFromPem(block!, 'pass phrase', budget).asymmetricKeyType).toBe('rsa');
    expect(() => privateKeyFromPem(block!, 'pass phrase', budget)).toThrow(/too much key-derivation work/);
  });

  test('refuses what is not a private key', () => {
    const now = { now: new Date() };
    const publicKey = openssl(['pkey', '-pubout'], rsa);
    expect(codeOf(() => readIdentity({ privateKey: publicKey }, now))).toBe('unsupported_format');
    expect(
      codeOf(() => privateKeyFromDer(openssl(['pkey', '-pubout', '-outform', 'DER'], rsa), undefined)),
    ).toBe('unsupported_format');
    expect(codeOf(() => privateKeyFromDer(Buffer.from('30030201', 'hex'), undefined))).toBe(
      'unsupported_format',
    );
    const ssh = withFiles({}, (file) => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file('id')]);
      return readFileSync(file('id'));
    });
    expect(codeOf(() => readIdentity({ privateKey: ssh }, now))).toBe('unsupported_format');
  });
});
