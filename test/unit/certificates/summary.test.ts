import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  chainEntry,
  fingerprintSha256,
  hasWeakSignature,
  readIdentity,
  signatureAlgorithmOf,
  spkiSha256,
  summarize,
} from '../../../src/certificates/index.js';
import { type KeyKind, makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf, openssl, selfSigned } from './helpers.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await makePki('Summary Test');
});

/** `openssl x509 -fingerprint -sha256` as lowercase hex without colons. */
function opensslFingerprint(pem: string): string {
  const out = openssl(['x509', '-noout', '-fingerprint', '-sha256'], pem).toString();
  return (/=([0-9A-F:]+)/.exec(out)?.[1] ?? '').replaceAll(':', '').toLowerCase();
}

/** `openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256`. */
function opensslSpki(pem: string): string {
  const pub = openssl(['x509', '-noout', '-pubkey'], pem);
  return createHash('sha256')
    .update(openssl(['pkey', '-pubin', '-outform', 'DER'], pub))
    .digest('hex');
}

describe('summarize', () => {
  test.each([
    ['rsa2048', 'RSA', 2048, undefined, 'ecdsa-with-SHA256'],
    ['rsa3072', 'RSA', 3072, undefined, 'ecdsa-with-SHA256'],
    ['ec256', 'EC', 256, 'P-256', 'ecdsa-with-SHA256'],
    ['ec384', 'EC', 384, 'P-384', 'ecdsa-with-SHA256'],
    ['ec521', 'EC', 521, 'P-521', 'ecdsa-with-SHA256'],
    ['ed25519', 'Ed25519', undefined, undefined, 'ecdsa-with-SHA256'],
  ] as const)(
    '%s leaf: fields agree with the openssl CLI',
    async (key, keyType, keySize, curve, signature) => {
      const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
      const notAfter = new Date(notBefore.getTime() + 30 * 86_400_000);
      const leaf = await pki.leaf({
        cn: `${key}.example`,
        key: key as KeyKind,
        dns: ['a.example', 'b.example'],
        ips: ['127.0.0.1', '2001:db8::1'],
        notBefore,
        notAfter,
      });
      const cert = new X509Certificate(leaf.certPem);
      const summary = summarize(cert);
      const serial = /serial=([0-9A-F]+)/.exec(
        openssl(['x509', '-noout', '-serial'], leaf.certPem).toString(),
      )?.[1];

      expect(summary).toEqual({
        subject: `CN=${key}.example`,
        issuer: 'CN=Summary Test Intermediate',
        serialNumber: serial,
        fingerprintSha256: opensslFingerprint(leaf.certPem),
        spkiSha256: opensslSpki(leaf.certPem),
        notBefore,
        notAfter,
        keyType,
        ...(keySize === undefined ? {} : { keySize }),
        ...(curve === undefined ? {} : { curve }),
        signatureAlgorithm: signature,
        subjectAltNames: ['DNS:a.example', 'DNS:b.example', 'IP:127.0.0.1', 'IP:2001:db8::1'],
      });
      expect(summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
      expect(spkiSha256(createPrivateKey(leaf.keyPem))).toBe(summary.spkiSha256);
      expect(chainEntry(cert)).toEqual({
        subject: summary.subject,
        issuer: summary.issuer,
        notAfter,
        fingerprintSha256: summary.fingerprintSha256,
      });
    },
  );

  test('signature algorithm names and OIDs for RSA, EC and Ed25519 issuers, and SHA-1 is weak', async () => {
    const { keyPem: rsaKey, certPem: rsaCert } = selfSigned([
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
    ]);
    expect(rsaKey).toContain('PRIVATE KEY');
    const rsa = new X509Certificate(rsaCert);
    expect(signatureAlgorithmOf(rsa)).toEqual({
      name: 'sha256WithRSAEncryption',
      oid: '1.2.840.113549.1.1.11',
    });
    const ed = new X509Certificate(selfSigned(['-algorithm', 'ED25519']).certPem);
    expect(signatureAlgorithmOf(ed)).toEqual({ name: 'Ed25519', oid: '1.3.101.112' });
    const sha1 = new X509Certificate((await pki.leaf({ cn: 'sha1', hash: 'SHA-1' })).certPem);
    expect(signatureAlgorithmOf(sha1)).toEqual({ name: 'ecdsa-with-SHA1', oid: '1.2.840.10045.4.1' });
    expect(hasWeakSignature(sha1)).toBe(true);
    expect(hasWeakSignature(rsa)).toBe(false);
    // The names match what `openssl x509 -text` prints.
    expect(openssl(['x509', '-noout', '-text'], rsaCert).toString()).toContain(
      'Signature Algorithm: sha256WithRSAEncryption',
    );
  });

  test.each([
    ['-sha256', false],
    ['-sha1', true],
  ] as const)('an RSASSA-PSS signature with %s: weak is %s', (digest, weak) => {
    const rsa = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    const { certPem, keyPem } = selfSigned(rsa, '/CN=pss', [digest, '-sigopt', 'rsa_padding_mode:pss']);
    const cert = new X509Certificate(certPem);
    expect(signatureAlgorithmOf(cert)).toEqual({ name: 'rsassaPss', oid: '1.2.840.113549.1.1.10' });
    expect(hasWeakSignature(cert)).toBe(weak);
    const code = codeOf(() => readIdentity({ file: Buffer.from(certPem + keyPem) }, { now: new Date() }));
    expect(code).toBe(weak ? 'weak_signature' : 'ok');
  });

  test('an RFC 4514 subject, most specific first and escaped, as openssl -nameopt RFC2253 prints it', () => {
    const { certPem } = selfSigned(['-algorithm', 'ED25519'], '/C=US/O=Example, Inc./OU=Unit;1/CN=#hash ');
    const expected = openssl(['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], certPem)
      .toString()
      .trim();
    expect(expected).toBe('subject=CN=\\#hash\\ ,OU=Unit\\;1,O=Example\\, Inc.,C=US');
    expect(`subject=${summarize(new X509Certificate(certPem)).subject}`).toBe(expected);
  });

  test('a multi-valued RDN joins its attributes with + in their DER (sorted) order', () => {
    // RFC 4514 leaves the order inside an RDN open; OpenSSL's RFC2253 output reverses it, pyca does not.
    const { certPem } = selfSigned(['-algorithm', 'ED25519'], '/O=Org/OU=a+CN=b', ['-multivalue-rdn']);
    expect(summarize(new X509Certificate(certPem)).subject).toBe('CN=b+OU=a,O=Org');
  });

  test("fingerprintSha256 of a TLS peer certificate (DER in raw) is openssl's fingerprint, lowercase without colons", async () => {
    const leaf = await pki.leaf({ cn: 'peer.example' });
    const cert = new X509Certificate(leaf.certPem);
    // The shape tls.TLSSocket#getPeerCertificate() returns: the DER in `raw`, `fingerprint256` as AB:CD:...
    const peer = { raw: cert.raw, fingerprint256: cert.fingerprint256 };
    expect(fingerprintSha256(peer)).toBe(opensslFingerprint(leaf.certPem));
    expect(fingerprintSha256(peer)).toBe(peer.fingerprint256.replaceAll(':', '').toLowerCase());
  });

  test('refuses to describe keys the summary has no words for', () => {
    for (const genpkey of [
      ['-algorithm', 'ED448'],
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
    ]) {
      const cert = new X509Certificate(selfSigned(genpkey).certPem);
      expect(codeOf(() => summarize(cert))).toBe('unsupported_key_type');
      expect(fingerprintSha256(cert)).toMatch(/^[0-9a-f]{64}$/);
    }
  });
});
