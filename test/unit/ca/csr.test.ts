import { describe, expect, test } from 'vitest';
import { readCsr } from '../../../src/ca/csr.js';
import { errorCodeOf as codeOf, openssl, withFiles } from '../certificates/helpers.js';

/** A CSR from `openssl req -new` for a fresh P-256 key, with `extra` arguments (`-addext ...`). */
function csr(extra: string[] = []): string {
  const keyPem = openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']).toString();
  return withFiles({ 'key.pem': keyPem }, (file) =>
    openssl(['req', '-new', '-key', file('key.pem'), '-subj', '/CN=csr test', ...extra]).toString(),
  );
}

describe('readCsr', () => {
  test('reads a CSR behind a UTF-8 byte-order mark, as OpenSSL does', () => {
    const pem = csr();
    expect(readCsr(Buffer.from(pem)).subject).toBe('CN=csr test');
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(pem)]);
    withFiles({ 'bom.csr': withBom }, (file) =>
      openssl(['req', '-in', file('bom.csr'), '-noout', '-verify']),
    );
    expect(readCsr(withBom).subject).toBe('CN=csr test');
  });

  test('refuses a CSR asking for a key usage without digitalSignature; with it, or none, is fine', () => {
    expect(codeOf(() => readCsr(Buffer.from(csr(['-addext', 'keyUsage=critical,keyEncipherment']))))).toBe(
      'digital_signature_not_allowed',
    );
    expect(codeOf(() => readCsr(Buffer.from(csr(['-addext', 'keyUsage=keyAgreement']))))).toBe(
      'digital_signature_not_allowed',
    );
    expect(
      codeOf(() =>
        readCsr(Buffer.from(csr(['-addext', 'keyUsage=critical,digitalSignature,keyEncipherment']))),
      ),
    ).toBe('ok');
    expect(codeOf(() => readCsr(Buffer.from(csr(['-addext', 'extendedKeyUsage=clientAuth']))))).toBe('ok');
  });
});
