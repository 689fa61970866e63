/**
 * One upload holds a bounded number of keys and certificates, counted before anything is decoded,
 * and the same key given several times is one key.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { readIdentity, readPkcs12 } from '../../../src/certificates/index.js';
import { MAX_UPLOAD_CERTIFICATES, MAX_UPLOAD_PRIVATE_KEYS } from '../../../src/certificates/limits.js';
import { type CertKey, ed25519KeyFlood, makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf, joinPkcs12, openssl, p12With } from './helpers.js';

let pki: TestPki;
let leaf: CertKey;
const now = () => new Date();

beforeAll(async () => {
  pki = await makePki('Limits');
  leaf = await pki.leaf({ cn: 'limits.client.example' });
});

/** A PEM block with `label` whose body is valid base64 but not a key or certificate. */
const nonsense = (label: string) => `-----BEGIN ${label}-----\nAAECAwQF\n-----END ${label}-----\n`;
const KEY_LABEL = ['PRIVATE', 'KEY'].join(' ');

describe('keys per upload', () => {
  test('more key blocks than allowed are refused before any is decoded', () => {
    // Had the keys been decoded in turn, the last (not a key) would fail as unsupported_format.
    const keys = `${leaf.keyPem.repeat(MAX_UPLOAD_PRIVATE_KEYS)}${nonsense(KEY_LABEL)}`;
    expect(
      codeOf(() => readIdentity({ file: Buffer.from(`${leaf.certPem}\n${keys}`) }, { now: now() })),
    ).toBe('multiple_private_keys');
  });

  test('the red-team upload: a megabyte of distinct Ed25519 keys is refused by count', () => {
    // Formerly every key was decoded and compared with every other: 10 s of a parse thread.
    const flood = ed25519KeyFlood();
    expect(flood.toString().match(new RegExp(`-----BEGIN ${KEY_LABEL}-----`, 'g'))?.length).toBeGreaterThan(
      8000,
    );
    expect(codeOf(() => readIdentity({ file: flood }, { now: now() }))).toBe('multiple_private_keys');
  });

  test('the same key in every part (bundle, key part, DER) is one key, up to the limit', () => {
    const der = openssl(['pkey', '-outform', 'DER'], leaf.keyPem);
    const upload = {
      file: Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${leaf.keyPem}`),
      privateKey: der,
      chain: Buffer.from(pki.intermediate.certPem),
    };
    expect(readIdentity(upload, { now: now() }).summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
  });

  test('a PKCS#12 file holding more keys than allowed is refused while it is read', () => {
    // Copies of one key, which the former pairwise comparison merged into one and accepted.
    const keyOnly = p12With({ keyPem: leaf.keyPem }, 'pw', ['-nomac']);
    const file = joinPkcs12(Array.from({ length: MAX_UPLOAD_PRIVATE_KEYS + 1 }, () => keyOnly));
    expect(codeOf(() => readPkcs12(file, 'pw'))).toBe('multiple_private_keys');
    const withCert = { file, password: 'pw', certificate: Buffer.from(leaf.certPem) };
    expect(codeOf(() => readIdentity(withCert, { now: now() }))).toBe('multiple_private_keys');
    const allowed = joinPkcs12(Array.from({ length: MAX_UPLOAD_PRIVATE_KEYS }, () => keyOnly));
    expect(readPkcs12(allowed, 'pw').privateKeys).toHaveLength(MAX_UPLOAD_PRIVATE_KEYS);
  });
});

describe('certificates per upload', () => {
  test('more certificate blocks than allowed are refused before any is decoded', () => {
    const chain = `${pki.intermediate.certPem}\n`.repeat(MAX_UPLOAD_CERTIFICATES - 1);
    const file = Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${chain}${nonsense('CERTIFICATE')}`);
    expect(codeOf(() => readIdentity({ file }, { now: now() }))).toBe('chain_mismatch');
    // Copies up to the limit are one chain certificate.
    const copies = Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${chain}`);
    expect(readIdentity({ file: copies }, { now: now() }).chain).toHaveLength(1);
  });

  test('parts add up: a bundle at the limit plus one more certificate part is refused', () => {
    const chain = `${pki.intermediate.certPem}\n`.repeat(MAX_UPLOAD_CERTIFICATES - 1);
    const upload = {
      file: Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${chain}`),
      chain: Buffer.from(pki.root.certPem),
    };
    expect(codeOf(() => readIdentity(upload, { now: now() }))).toBe('chain_mismatch');
  });
});
