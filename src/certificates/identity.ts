/**
 * Turns an uploaded client identity (PKCS#12, or PEM/DER parts) into a validated leaf certificate,
 * private key and chain, or refuses it with one CertificateError code.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { buildChain } from './chain.js';
import { CertificateError, wrapErrors } from './errors.js';
import { checkKeyPolicy, isPrivateKeyLabel, privateKeyFromDer, privateKeyFromPem } from './keys.js';
import { checkUploadCounts } from './limits.js';
import { WorkBudget } from './pbe.js';
import { CERTIFICATE_LABELS, certificateFromDer, isPem, parsePemBlocks, toPem } from './pem.js';
import { readPkcs12, refuseJavaKeystore } from './pkcs12.js';
import {
  type CertificateSummary,
  type ChainEntry,
  chainEntry,
  fingerprintSha256,
  hasWeakSignature,
  signatureAlgorithmOf,
  spkiSha256,
  subjectOf,
  summarize,
  validityOf,
} from './summary.js';
import { checkClientUsage } from './usage.js';

/**
 * What a tenant uploads (API.md, Identities). `file` is a PKCS#12 file (DER), a PEM bundle holding
 * certificate, key and chain in any order, or a DER certificate; `certificate`, `privateKey` and
 * `chain` are the same material in separate parts (PEM, or DER for a single certificate or key).
 * Everything given is pooled: the leaf is whichever certificate matches the one private key.
 * `password` opens a PKCS#12 file or an encrypted PEM/DER key.
 */
export interface IdentityUpload {
  file?: Buffer;
  certificate?: Buffer;
  privateKey?: Buffer;
  chain?: Buffer;
  password?: string;
}

/** A usable identity. `certificatesPem` is the leaf then the chain, ready for `tls.createSecureContext`. */
export interface ValidatedIdentity {
  leaf: X509Certificate;
  /** Intermediates ordered leaf-first; a self-signed root is dropped. */
  chain: X509Certificate[];
  privateKey: KeyObject;
  summary: CertificateSummary;
  chainSummary: ChainEntry[];
  certificatesPem: string;
}

/** The keys and certificates gathered from every part of an upload, within the limits of limits.ts. */
class Material {
  readonly certificates: X509Certificate[] = [];
  readonly privateKeys: KeyObject[] = [];

  /**
   * Refuses, before they are decoded, `keys` more keys or `certificates` more certificates than
   * the upload may hold.
   */
  reserve(keys: number, certificates: number): void {
    checkUploadCounts(this.privateKeys.length + keys, this.certificates.length + certificates);
  }
}

function fromPem(input: Buffer, password: string | undefined, into: Material, budget: WorkBudget): void {
  const blocks = parsePemBlocks(input.toString('utf8'));
  // Other blocks (EC PARAMETERS from `openssl ecparam -genkey`, CERTIFICATE REQUEST, PUBLIC KEY)
  // carry nothing an identity needs and are skipped.
  const certificates = blocks.filter((block) => CERTIFICATE_LABELS.has(block.label));
  const keys = blocks.filter((block) => isPrivateKeyLabel(block.label));
  if (certificates.length + keys.length === 0) {
    throw new CertificateError('unsupported_format', 'The PEM text holds no certificate or private key.');
  }
  into.reserve(keys.length, certificates.length);
  for (const block of certificates) into.certificates.push(certificateFromDer(block.der, block.label));
  for (const block of keys) into.privateKeys.push(privateKeyFromPem(block, password, budget));
}

/** Reads a binary `file`: a DER certificate if it is exactly one, else PKCS#12. */
function fromBinaryFile(
  input: Buffer,
  password: string | undefined,
  into: Material,
  budget: WorkBudget,
): void {
  let cert: X509Certificate | undefined;
  try {
    cert = certificateFromDer(input);
  } catch {
    cert = undefined;
  }
  if (cert) {
    into.reserve(0, 1);
    into.certificates.push(cert);
    return;
  }
  // readPkcs12 refuses a file past the limits of limits.ts as it decodes; the file comes first, so
  // its counts are the upload's so far.
  const contents = readPkcs12(input, password ?? null, budget);
  into.reserve(contents.privateKeys.length, contents.certificates.length);
  into.privateKeys.push(...contents.privateKeys.map((k) => k.key));
  into.certificates.push(...contents.certificates.map((c) => c.certificate));
}

function fromCertificatePart(
  input: Buffer,
  password: string | undefined,
  into: Material,
  budget: WorkBudget,
): void {
  if (isPem(input)) {
    fromPem(input, password, into, budget);
    return;
  }
  refuseJavaKeystore(input);
  into.reserve(0, 1);
  into.certificates.push(certificateFromDer(input));
}

function fromKeyPart(input: Buffer, password: string | undefined, into: Material, budget: WorkBudget): void {
  if (isPem(input)) {
    fromPem(input, password, into, budget);
    return;
  }
  refuseJavaKeystore(input);
  into.reserve(1, 0);
  into.privateKeys.push(privateKeyFromDer(input, password, budget));
}

function matches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/**
 * The same key given twice (a PEM bundle plus a separate key part) is one key, not two. Keys are
 * told apart by the SHA-256 of their public half (one hash each, no pairwise comparison; and
 * KeyObject.equals on keys of different types leaves an error on OpenSSL's queue on Node 20 that
 * the next createPrivateKey in the process then reports).
 */
function distinctKeys(keys: KeyObject[]): KeyObject[] {
  const byHash = new Map<string, KeyObject>();
  for (const key of keys) {
    const hash = spkiSha256(key);
    if (!byHash.has(hash)) byHash.set(hash, key);
  }
  return [...byHash.values()];
}

function checkValidity(cert: X509Certificate, now: Date, role: string): void {
  const { notBefore, notAfter } = validityOf(cert);
  const name = `The ${role} certificate "${subjectOf(cert)}"`;
  if (now.getTime() > notAfter.getTime()) {
    throw new CertificateError('certificate_expired', `${name} expired at ${notAfter.toISOString()}.`);
  }
  if (now.getTime() < notBefore.getTime()) {
    throw new CertificateError(
      'certificate_not_yet_valid',
      `${name} is not valid before ${notBefore.toISOString()}.`,
    );
  }
}

/**
 * Reads and validates an uploaded identity. Checks, in this order (the first failure is reported):
 * at most MAX_UPLOAD_PRIVATE_KEYS keys and MAX_UPLOAD_CERTIFICATES certificates, copies included,
 * counted before they are decoded (`multiple_private_keys`, `chain_mismatch`: limits.ts); readable
 * input (`unsupported_format`, `bad_password`, `java_keystore` for a JKS or JCEKS file in any
 * part); exactly one private key (`no_private_key`, `multiple_private_keys`); a certificate
 * (`no_certificate`); the key policy (`unsupported_key_type`, `weak_key`: RSA ≥ 2048 bits, EC
 * P-256/384/521 with a named curve, Ed25519); a certificate matching the key (`key_mismatch`); the
 * leaf's signature not MD2/MD4/MD5/SHA-1 (`weak_signature`); `options.now` within the leaf's
 * notBefore..notAfter (`certificate_expired`, `certificate_not_yet_valid`); clientAuth or
 * anyExtendedKeyUsage when the leaf has an EKU extension (`client_auth_not_allowed`, RFC 5280
 * §4.2.1.12); digitalSignature when it has a keyUsage (`digital_signature_not_allowed`, §4.2.1.3);
 * every other certificate linking into one path from the leaf (`chain_mismatch`); `options.now`
 * within each intermediate's validity. A self-signed root is dropped from the chain (and its
 * validity is the remote server's business).
 *
 * @throws CertificateError with the codes above; never another error type.
 */
export function readIdentity(upload: IdentityUpload, options: { now: Date }): ValidatedIdentity {
  return wrapErrors('unsupported_format', 'The upload could not be read.', () =>
    validate(upload, options.now),
  );
}

function validate(upload: IdentityUpload, now: Date): ValidatedIdentity {
  if (!upload.file && !upload.certificate && !upload.privateKey && !upload.chain) {
    throw new CertificateError('unsupported_format', 'Nothing was uploaded.');
  }
  const { password } = upload;
  const material = new Material();
  // One key-derivation budget for the whole upload, however many keys and files it holds.
  const budget = new WorkBudget();
  if (upload.file) {
    if (isPem(upload.file)) fromPem(upload.file, password, material, budget);
    else fromBinaryFile(upload.file, password, material, budget);
  }
  if (upload.certificate) fromCertificatePart(upload.certificate, password, material, budget);
  if (upload.privateKey) fromKeyPart(upload.privateKey, password, material, budget);
  if (upload.chain) fromCertificatePart(upload.chain, password, material, budget);

  const keys = distinctKeys(material.privateKeys);
  const [privateKey] = keys;
  if (!privateKey) throw new CertificateError('no_private_key', 'The upload holds no private key.');
  if (keys.length > 1) {
    throw new CertificateError(
      'multiple_private_keys',
      `The upload holds ${keys.length} private keys; give exactly one.`,
    );
  }
  if (material.certificates.length === 0) {
    throw new CertificateError('no_certificate', 'The upload holds no certificate.');
  }
  checkKeyPolicy(privateKey);

  const leaf = material.certificates.find((cert) => matches(cert, privateKey));
  if (!leaf) {
    throw new CertificateError('key_mismatch', 'No certificate in the upload matches the private key.');
  }
  // The leaf's key is the private key's public half; checking it too catches an explicit-curve
  // encoding that only the certificate carries.
  checkKeyPolicy(leaf.publicKey);
  if (hasWeakSignature(leaf)) {
    throw new CertificateError(
      'weak_signature',
      `The certificate is signed with ${signatureAlgorithmOf(leaf).name}; MD5 and SHA-1 signatures are refused.`,
    );
  }
  checkValidity(leaf, now, 'leaf');
  checkClientUsage(leaf);

  const leafFingerprint = fingerprintSha256(leaf);
  const others = material.certificates.filter((cert) => fingerprintSha256(cert) !== leafFingerprint);
  const { chain } = buildChain(leaf, others);

  for (const cert of chain) checkValidity(cert, now, 'chain');

  return {
    leaf,
    chain,
    privateKey,
    summary: summarize(leaf),
    chainSummary: chain.map(chainEntry),
    certificatesPem: [leaf, ...chain].map((cert) => toPem('CERTIFICATE', cert.raw)).join(''),
  };
}
