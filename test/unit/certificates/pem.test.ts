import { randomBytes, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  parsePemBlocks,
  readCertificates,
  readTrustAnchors,
  toPem,
} from '../../../src/certificates/index.js';
import { makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf, openssl } from './helpers.js';

/** A PEM key label built at run time: the test needs the label, and no key is committed. */
const FAKE_KEY_LABEL = ['PRIVATE', 'KEY'].join(' ');

let pki: TestPki;
beforeAll(async () => {
  pki = await makePki('PEM Test');
});

const der = (pem: string) => new X509Certificate(pem).raw;

describe('parsePemBlocks', () => {
  test('reads blocks in order, with CRLF, text around them and encapsulated headers', () => {
    const text = [
      'Bag Attributes',
      '    localKeyID: 01 02',
      '-----BEGIN CERTIFICATE-----',
      'AAEC',
      'AwQ=',
      '-----END CERTIFICATE-----',
      'between',
      `-----BEGIN RSA ${FAKE_KEY_LABEL}-----`,
      'Proc-Type: 4,ENCRYPTED',
      'DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF',
      '',
      'BQYH',
      `-----END RSA ${FAKE_KEY_LABEL}-----`,
      'after',
    ].join('\r\n');
    expect(parsePemBlocks(text)).toEqual([
      { label: 'CERTIFICATE', der: Buffer.from([0, 1, 2, 3, 4]) },
      {
        label: 'RSA PRIVATE KEY',
        der: Buffer.from([5, 6, 7]),
        headers: { 'Proc-Type': '4,ENCRYPTED', 'DEK-Info': 'AES-128-CBC,00112233445566778899AABBCCDDEEFF' },
      },
    ]);
  });

  test('returns no blocks for text without PEM, and refuses a block that is not base64', () => {
    expect(parsePemBlocks('hello')).toEqual([]);
    // An END line with another label does not close the block.
    expect(parsePemBlocks('-----BEGIN CERTIFICATE-----\nAAEC\n-----END PRIVATE KEY-----\n')).toEqual([]);
    expect(codeOf(() => parsePemBlocks('-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----'))).toBe(
      'unsupported_format',
    );
    expect(codeOf(() => parsePemBlocks('-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----'))).toBe(
      'unsupported_format',
    );
  });

  test('reads hostile text in one pass: two megabytes of BEGIN lines without END yields nothing', () => {
    // The former regex scanned to the end of the text for every open BEGIN: over a minute for this.
    const hostile = '-----BEGIN A-----\n'.repeat(120_000);
    expect(hostile.length).toBeGreaterThan(2_000_000);
    expect(parsePemBlocks(hostile)).toEqual([]);
    // A block left open is skipped; the next complete one is read.
    expect(
      parsePemBlocks(
        `-----BEGIN CERTIFICATE-----\nAAEC\n${'-----BEGIN CERTIFICATE-----\nAwQ=\n-----END CERTIFICATE-----\n'}`,
      ),
    ).toEqual([{ label: 'CERTIFICATE', der: Buffer.from([3, 4]) }]);
    // An END marker right after the last base64 characters closes the block.
    expect(parsePemBlocks('-----BEGIN CERTIFICATE-----\nAAEC-----END CERTIFICATE-----')).toEqual([
      { label: 'CERTIFICATE', der: Buffer.from([0, 1, 2]) },
    ]);
  });

  test('a UTF-8 byte-order mark before the first block or between joined files hides no block', () => {
    // Windows Notepad starts every file it saves with EF BB BF; `cat a.pem b.pem` puts one between.
    const bom = '\uFEFF';
    const text = `${bom}${pki.root.certPem}\n${bom}${pki.intermediate.certPem}\n`;
    expect(Buffer.from(text).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(parsePemBlocks(Buffer.from(text).toString('utf8')).map((b) => b.der)).toEqual([
      der(pki.root.certPem),
      der(pki.intermediate.certPem),
    ]);
    expect(readCertificates(Buffer.from(text))).toHaveLength(2);
    expect(readTrustAnchors(text)).toHaveLength(2);
  });

  test('toPem writes 64-character lines that parsePemBlocks and openssl read back', () => {
    const cert = der(pki.root.certPem);
    const pem = toPem('CERTIFICATE', cert);
    expect(pem.split('\n').every((line) => line.length <= 64)).toBe(true);
    expect(pem.endsWith('-----END CERTIFICATE-----\n')).toBe(true);
    expect(parsePemBlocks(pem)).toEqual([{ label: 'CERTIFICATE', der: cert }]);
    expect(openssl(['x509', '-outform', 'DER'], pem).equals(cert)).toBe(true);
  });
});

describe('readCertificates', () => {
  test('reads several PEM certificates, skipping other blocks', async () => {
    const leaf = await pki.leaf({ cn: 'pem leaf' });
    const text = `${leaf.keyPem}${leaf.certPem}\n${pki.intermediate.certPem}\n`;
    const certs = readCertificates(Buffer.from(text));
    expect(certs.map((c) => c.raw)).toEqual([der(leaf.certPem), der(pki.intermediate.certPem)]);
  });

  test('reads a single DER certificate and the old X509 CERTIFICATE and TRUSTED CERTIFICATE labels', () => {
    const cert = der(pki.root.certPem);
    expect(readCertificates(cert)[0]?.raw).toEqual(cert);
    const old = toPem('X509 CERTIFICATE', cert);
    expect(readCertificates(Buffer.from(old))[0]?.raw).toEqual(cert);
    // `openssl x509 -trustout` appends trust settings after the certificate; we keep the certificate.
    const trusted = openssl(['x509', '-trustout', '-addtrust', 'clientAuth'], pki.root.certPem).toString();
    expect(trusted).toContain('BEGIN TRUSTED CERTIFICATE');
    expect(readCertificates(Buffer.from(trusted))[0]?.raw).toEqual(cert);
  });

  test('refuses random bytes, a truncated DER certificate, trailing bytes and PEM without certificates', () => {
    const cert = der(pki.root.certPem);
    expect(codeOf(() => readCertificates(randomBytes(500)))).toBe('unsupported_format');
    expect(codeOf(() => readCertificates(cert.subarray(0, cert.length - 1)))).toBe('unsupported_format');
    expect(codeOf(() => readCertificates(Buffer.concat([cert, cert])))).toBe('unsupported_format');
    expect(codeOf(() => readCertificates(Buffer.from(pki.root.keyPem)))).toBe('unsupported_format');
    expect(codeOf(() => readCertificates(Buffer.alloc(0)))).toBe('unsupported_format');
  });
});

describe('readTrustAnchors', () => {
  test('reads CA certificates', () => {
    const anchors = readTrustAnchors(`${pki.root.certPem}\n${pki.intermediate.certPem}\n`);
    expect(anchors.map((c) => c.subject)).toEqual(['CN=PEM Test Root', 'CN=PEM Test Intermediate']);
  });

  test('refuses a leaf, DER, garbage and empty text with invalid_trust_anchors', async () => {
    const leaf = await pki.leaf({ cn: 'not a ca' });
    expect(codeOf(() => readTrustAnchors(`${pki.root.certPem}\n${leaf.certPem}`))).toBe(
      'invalid_trust_anchors',
    );
    expect(codeOf(() => readTrustAnchors(der(pki.root.certPem).toString('latin1')))).toBe(
      'invalid_trust_anchors',
    );
    expect(
      codeOf(() => readTrustAnchors('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----')),
    ).toBe('invalid_trust_anchors');
    expect(codeOf(() => readTrustAnchors(''))).toBe('invalid_trust_anchors');
  });
});
