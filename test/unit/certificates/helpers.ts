/**
 * Shared helpers for the certificates/ unit tests: the openssl CLI over stdin/stdout, the fixture's
 * PKCS#12 writer, and error-code capture.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContentInfo } from '@peculiar/asn1-cms';
import { AuthenticatedSafe, PFX } from '@peculiar/asn1-pfx';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import { CertificateError, fingerprintSha256 } from '../../../src/certificates/index.js';
import { type CertKey, makePkcs12, tempDir } from '../../fixtures/pki.js';

/** The CertificateError code `fn` throws, or 'ok'. Any other exception fails the test. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof CertificateError) return err.code;
    throw err;
  }
}

/** The `code` of any error `fn` throws (AppError or CertificateError), or 'ok'. */
export function errorCodeOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (typeof code === 'string') return code;
    throw err;
  }
}

/** The CertificateError `fn` throws; fails the test when it returns or throws something else. */
export function errorOf(fn: () => unknown): CertificateError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CertificateError) return err;
    throw err;
  }
  throw new Error('expected a CertificateError');
}

/** Runs `openssl` with `input` on stdin; passwords go through the environment, never argv. */
export function openssl(args: string[], input?: string | Buffer, env: Record<string, string> = {}): Buffer {
  return execFileSync('openssl', args, {
    input,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** The fixture's PEM has no final newline; openssl then cannot split a concatenated chain file. */
export function withNewline(c: CertKey): CertKey {
  return c.certPem.endsWith('\n') ? c : { ...c, certPem: `${c.certPem}\n` };
}

/** makePkcs12 (the real `openssl pkcs12 -export`) with the newline workaround. */
export function p12(
  leaf: CertKey,
  chain: CertKey[],
  password: string,
  options: { legacy?: boolean; name?: string } = {},
): Buffer {
  return makePkcs12(withNewline(leaf), chain.map(withNewline), password, options);
}

/** Runs `fn` with `files` written to a fresh temporary folder (openssl reads some inputs only from files). */
export function withFiles<T>(
  files: Record<string, string | Buffer>,
  fn: (file: (name: string) => string) => T,
): T {
  const { dir, cleanup } = tempDir('twoway-cert-test-');
  try {
    for (const [name, content] of Object.entries(files))
      writeFileSync(join(dir, name), content, { mode: 0o600 });
    return fn((name) => join(dir, name));
  } finally {
    cleanup();
  }
}

/**
 * `openssl pkcs12 -export` of a certificate and/or key (and chain), with extra options such as
 * `-nomac`, `-macalg sha512` or `-nokeys` that the fixture's makePkcs12 does not offer.
 */
export function p12With(
  parts: { certPem?: string; keyPem?: string; chainPem?: string },
  password: string,
  extra: string[] = [],
): Buffer {
  const files: Record<string, string> = {};
  if (parts.certPem) files['cert.pem'] = parts.certPem;
  if (parts.keyPem) files['key.pem'] = parts.keyPem;
  if (parts.chainPem) files['chain.pem'] = parts.chainPem;
  return withFiles(files, (file) => {
    const args = ['pkcs12', '-export', '-passout', 'env:PW', ...extra];
    if (parts.certPem) args.push('-in', file('cert.pem'));
    else args.push('-nocerts', '-in', file('key.pem'));
    if (parts.keyPem && parts.certPem) args.push('-inkey', file('key.pem'));
    if (!parts.keyPem) args.push('-nokeys');
    if (parts.chainPem) args.push('-certfile', file('chain.pem'));
    return openssl(args, undefined, { PW: password });
  });
}

/**
 * A private key from `openssl genpkey <genpkey>` and a self-signed certificate for it from
 * `openssl req -x509 -subj <subject> <req>` (valid two days from now).
 */
export function selfSigned(
  genpkey: string[],
  subject = '/CN=self-signed test',
  req: string[] = [],
): { keyPem: string; certPem: string } {
  const keyPem = openssl(['genpkey', ...genpkey]).toString();
  const certPem = withFiles({ 'key.pem': keyPem }, (file) =>
    openssl([
      'req',
      '-new',
      '-x509',
      '-key',
      file('key.pem'),
      '-subj',
      subject,
      '-days',
      '2',
      ...req,
    ]).toString(),
  );
  return { keyPem, certPem };
}

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/**
 * Issues a certificate the fixture cannot make: chosen validity, extended key usage OIDs, CA or not.
 * EC P-256 key, signed with SHA-256 by `issuer`.
 */
export async function issue(
  issuer: CertKey,
  options: { cn: string; ca?: boolean; eku?: string[]; notBefore: Date; notAfter: Date },
): Promise<CertKey> {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(options.ca ?? false, undefined, true),
  ];
  if (options.ca) {
    extensions.push(
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    );
  }
  if (options.eku) extensions.push(new x509.ExtendedKeyUsageExtension(options.eku, false));
  const issuerAlg = issuer.keys.privateKey.algorithm as { name: string };
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomBytes(8)
      .toString('hex')
      .replace(/^[89a-f]/, '1'),
    subject: `CN=${options.cn}`,
    issuer: issuer.cert.subject,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm:
      issuerAlg.name === 'ECDSA'
        ? ({ name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams)
        : ({ name: issuerAlg.name, hash: 'SHA-256' } as Algorithm),
    extensions,
  });
  const certPem = `${cert.toString('pem')}\n`;
  return {
    certPem,
    keyPem: await pkcs8PemOf(keys),
    fingerprintSha256: fingerprintSha256(new X509Certificate(certPem)),
    subject: cert.subject,
    cert,
    keys,
  };
}

/** PKCS#8 PEM of a WebCrypto key pair. */
export async function pkcs8PemOf(keys: CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
    .export({ type: 'pkcs8', format: 'pem' })
    .toString();
}

export { DAY_MS } from '../../../src/certificates/index.js';

/** Joins the AuthenticatedSafes of MAC-less PKCS#12 files into one MAC-less file (RFC 7292 §4). */
export function joinPkcs12(files: Buffer[]): Buffer {
  const safes = files.flatMap((file) => {
    const pfx = AsnConvert.parse(file, PFX);
    const content = AsnConvert.parse(pfx.authSafe.content, OctetString);
    return [...AsnConvert.parse(content, AuthenticatedSafe)];
  });
  const authSafe = new OctetString(AsnConvert.serialize(new AuthenticatedSafe(safes)));
  const pfx = new PFX({
    version: 3,
    authSafe: new ContentInfo({
      contentType: '1.2.840.113549.1.7.1',
      content: AsnConvert.serialize(authSafe),
    }),
  });
  // PFX declares macData as required in its class; drop it so the MAC-less file stays MAC-less.
  delete (pfx as { macData?: unknown }).macData;
  return Buffer.from(AsnConvert.serialize(pfx));
}
