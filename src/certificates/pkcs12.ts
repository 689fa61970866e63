/**
 * PKCS#12 (RFC 7292) in password-integrity and password-privacy mode: legacy files (RC2-40 and 3DES
 * with a SHA-1 MAC, as Windows and `openssl -legacy` write them), modern ones (PBES2/PBKDF2/AES with a
 * SHA-256 MAC) and RFC 9579 PBMAC1 ones.
 *
 * Why not node-forge's PKCS#12 decoder: it re-encodes the certificates it understands (RSA only) from
 * its own object model, which can change their bytes and so their fingerprints and signatures; it
 * verifies only the classic MAC; and it runs PBKDF2 in pure JavaScript with no iteration limit. Why
 * not node:crypto: OpenSSL 3 without the legacy provider refuses RC2 (nodejs/node#40672) and OpenSSL
 * before 3.4 has no PBMAC1. So the structure is read with @peculiar/asn1-pfx (certificates keep their
 * exact DER), MACs and most ciphers run on node:crypto, and RC2 on node-forge (see pbe.ts).
 */
import { createHmac, type KeyObject, timingSafeEqual, type X509Certificate } from 'node:crypto';
import {
  AuthenticatedSafe,
  CertBag,
  type MacData,
  type PKCS12Attribute,
  SafeContents,
} from '@peculiar/asn1-pfx';
import { DirectoryString } from '@peculiar/asn1-x509';
import {
  EncryptedContentInfoRaw,
  EncryptedData,
  EncryptedPrivateKeyInfoRaw,
  implicitOctetStringContent,
  octetStringContent,
  octets,
  Pbmac1Params,
  Pfx,
  parseAsn1,
} from './asn1.js';
import { CertificateError, wrapErrors } from './errors.js';
import { privateKeyFromPkcs8 } from './keys.js';
import { checkUploadCounts, UploadLimitError } from './limits.js';
import {
  DIGEST_OIDS,
  decryptPbe,
  digestBytes,
  HMAC_OIDS,
  type Password,
  pbkdf2,
  pkcs12Kdf,
  readPbkdf2,
  WorkBudget,
  WorkLimitError,
} from './pbe.js';
import { certificateFromDer } from './pem.js';

/** Everything a PKCS#12 file holds that we use, in file order. `localKeyId` is lowercase hex. */
export interface Pkcs12Contents {
  privateKeys: { key: KeyObject; localKeyId?: string; friendlyName?: string }[];
  certificates: { certificate: X509Certificate; localKeyId?: string; friendlyName?: string }[];
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pbmac1: '1.2.840.113549.1.5.14',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
};

/** Nested SafeContents bags deeper than this are refused: nothing legitimate nests, recursion is a DoS. */
const MAX_NESTING = 4;

/**
 * The passwords to try, in order. PKCS#12 tells "no password" (zero bytes into the KDF) from the
 * empty string (two zero bytes, RFC 7292 Appendix B.1), and writers disagree on which one "blank"
 * means: OpenSSL MACs with the empty string, while go-pkcs12/windows-azure-tools.p12 and pyca's
 * `*-no-pwd.p12` are MACed with NULL (golang/crypto's test still opens the Azure file with ""). So a
 * caller who gives either gets the other tried too, the empty string first: OpenSSL writes most
 * files, and a wrong first guess costs a whole MAC derivation of the budget. A non-empty password
 * is tried as given only.
 */
function candidatePasswords(password: Password): Password[] {
  if (password === null || password === '') return ['', null];
  return [password];
}

function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Shortest PBMAC1 key accepted, in bytes. RFC 9579 §3 leaves the length to the writer (a 20-byte key
 * under HMAC-SHA-256 is valid), but a 1-byte key leaves 256 keys to try, so a forger can pick a salt
 * under which a second password verifies (sslmate-go-pkcs12's pbmac1-short-key-bypass.p12, OpenSSL
 * CVE-2026-34181). 20 bytes, the SHA-1 output, is go-pkcs12's floor too.
 */
export const MIN_PBMAC1_KEY_BYTES = 20;
/** Longest PBMAC1 key accepted, in bytes: HMAC hashes longer keys anyway (RFC 2104 §2). */
export const MAX_PBMAC1_KEY_BYTES = 512;

/** The PBMAC1 key length from the PBKDF2 parameters, which must state one (RFC 9579 §3). */
function pbmac1KeyBytes(keyLength: number | undefined): number {
  if (keyLength === undefined) {
    throw new CertificateError('unsupported_format', 'PBMAC1 requires an explicit PBKDF2 key length.');
  }
  if (
    !Number.isSafeInteger(keyLength) ||
    keyLength < MIN_PBMAC1_KEY_BYTES ||
    keyLength > MAX_PBMAC1_KEY_BYTES
  ) {
    throw new CertificateError(
      'unsupported_format',
      `The PBMAC1 key length of ${keyLength} bytes is outside ${MIN_PBMAC1_KEY_BYTES} to ${MAX_PBMAC1_KEY_BYTES}.`,
    );
  }
  return keyLength;
}

/**
 * Prepares the MAC check of MacData (RFC 7292 §5, RFC 9579 §3). Structural problems (unknown digest,
 * malformed PBMAC1 parameters) are thrown here, once, as `unsupported_format`; the returned function
 * then only answers whether a password authenticates `content`.
 */
function macVerifier(macData: MacData, content: Buffer, budget: WorkBudget): (password: Password) => boolean {
  const expected = octets(macData.mac.digest);
  const algorithm = macData.mac.digestAlgorithm;
  if (algorithm.algorithm === OID.pbmac1) {
    if (!algorithm.parameters) {
      throw new CertificateError('unsupported_format', 'PBMAC1 parameters are missing.');
    }
    const params = parseAsn1(algorithm.parameters, Pbmac1Params, 'PBMAC1 parameters');
    const hash = HMAC_OIDS[params.messageAuthScheme.algorithm];
    if (!hash) {
      throw new CertificateError(
        'unsupported_format',
        `The PBMAC1 MAC ${params.messageAuthScheme.algorithm} is not supported.`,
      );
    }
    const kdf = readPbkdf2(params.keyDerivationFunc);
    const keyBytes = pbmac1KeyBytes(kdf.keyLength);
    return (password) => {
      const key = pbkdf2(password, kdf, keyBytes, budget);
      return safeEqual(createHmac(hash, key).update(content).digest(), expected);
    };
  }
  const hash = DIGEST_OIDS[algorithm.algorithm];
  if (!hash) {
    throw new CertificateError(
      'unsupported_format',
      `The PKCS#12 MAC digest ${algorithm.algorithm} is not supported.`,
    );
  }
  const macBytes = digestBytes(hash);
  const salt = octets(macData.macSalt);
  return (password) => {
    const key = pkcs12Kdf(password, salt, 3, macData.iterations, macBytes, hash, budget);
    return safeEqual(createHmac(hash, key).update(content).digest(), expected);
  };
}

interface BagAttributes {
  localKeyId?: string;
  friendlyName?: string;
}

function readAttributes(attributes: PKCS12Attribute[] | undefined): BagAttributes {
  const out: BagAttributes = {};
  for (const attribute of attributes ?? []) {
    const value = attribute.attrValues[0];
    if (!value) continue;
    // Unknown attributes (Windows' 1.3.6.1.4.1.311.17.x) are ignored, as RFC 7292 §4.2 allows.
    if (attribute.attrId === OID.localKeyId) {
      out.localKeyId = octetStringContent(value, 'A localKeyId attribute').toString('hex');
    } else if (attribute.attrId === OID.friendlyName) {
      const name = parseAsn1(value, DirectoryString, 'A friendlyName attribute');
      // Windows Azure Tools writes a trailing NUL (go-pkcs12/windows-azure-tools.p12); a NUL cannot
      // be stored in PostgreSQL text and means nothing to a reader.
      out.friendlyName = (name.bmpString ?? name.utf8String ?? name.toString()).replace(/\0+$/, '');
    }
  }
  return out;
}

class Decoder {
  readonly contents: Pkcs12Contents = { privateKeys: [], certificates: [] };
  /** Set once anything was decrypted: later decoding failures may mean a wrong password. */
  decrypted = false;

  constructor(
    private readonly password: Password,
    private readonly budget: WorkBudget,
  ) {}

  authenticatedSafe(bytes: Buffer): void {
    const safe = parseAsn1(bytes, AuthenticatedSafe, 'The PKCS#12 AuthenticatedSafe');
    for (const info of safe) {
      if (info.contentType === OID.data) {
        this.safeContents(octetStringContent(info.content, 'PKCS#12 data'), 0);
      } else if (info.contentType === OID.encryptedData) {
        this.safeContents(this.decryptData(info.content), 0);
      } else {
        // envelopedData (public-key privacy mode) and anything else.
        throw new CertificateError(
          'unsupported_format',
          `PKCS#12 content of type ${info.contentType} is not supported.`,
        );
      }
    }
  }

  private decryptData(der: ArrayBuffer): Buffer {
    const data = parseAsn1(der, EncryptedData, 'PKCS#12 encrypted data');
    const info = parseAsn1(data.encryptedContentInfo, EncryptedContentInfoRaw, 'PKCS#12 encrypted content');
    if (info.contentType !== OID.data || !info.encryptedContent) {
      throw new CertificateError('unsupported_format', 'PKCS#12 encrypted content is not Data.');
    }
    const ciphertext = implicitOctetStringContent(info.encryptedContent, 'PKCS#12 encrypted content');
    this.decrypted = true;
    return decryptPbe(info.contentEncryptionAlgorithm, ciphertext, this.password, this.budget);
  }

  /** Refuses a file that would hold more keys or certificates than an upload may (limits.ts). */
  private reserve(keys: number, certificates: number): void {
    checkUploadCounts(
      this.contents.privateKeys.length + keys,
      this.contents.certificates.length + certificates,
    );
  }

  private safeContents(bytes: Buffer, depth: number): void {
    if (depth > MAX_NESTING) {
      throw new CertificateError('unsupported_format', 'PKCS#12 bags are nested too deeply.');
    }
    for (const bag of parseAsn1(bytes, SafeContents, 'PKCS#12 SafeContents')) {
      const attributes = readAttributes(bag.bagAttributes);
      const value = Buffer.from(bag.bagValue);
      switch (bag.bagId) {
        case OID.keyBag:
          this.reserve(1, 0);
          this.contents.privateKeys.push({ key: privateKeyFromPkcs8(value), ...attributes });
          break;
        case OID.shroudedKeyBag: {
          // Counted before decryption: a file of many keys spends no key derivation on them.
          this.reserve(1, 0);
          const info = parseAsn1(value, EncryptedPrivateKeyInfoRaw, 'A PKCS#12 shrouded key bag');
          const ciphertext = octetStringContent(info.encryptedData, 'A PKCS#12 shrouded key');
          this.decrypted = true;
          const der = decryptPbe(info.encryptionAlgorithm, ciphertext, this.password, this.budget);
          this.contents.privateKeys.push({ key: privateKeyFromPkcs8(der), ...attributes });
          break;
        }
        case OID.certBag: {
          const certBag = parseAsn1(value, CertBag, 'A PKCS#12 certificate bag');
          // SDSI certificates (RFC 7292 §4.2.3) are not X.509 and cannot be presented in TLS.
          if (certBag.certId !== OID.x509Certificate) break;
          this.reserve(0, 1);
          const der = octetStringContent(certBag.certValue, 'A PKCS#12 certificate');
          this.contents.certificates.push({ certificate: certificateFromDer(der), ...attributes });
          break;
        }
        case OID.safeContentsBag:
          this.safeContents(value, depth + 1);
          break;
        default:
          // CRL and secret bags, and unknown bag types, hold nothing an identity uses.
          break;
      }
    }
  }
}

/**
 * Reads a PKCS#12 file (RFC 7292): checks the MAC (classic PKCS#12 MAC with SHA-1/224/256/384/512, or
 * RFC 9579 PBMAC1), decrypts (PBES2 with AES or 3DES, PKCS#12 PBE with 3DES or RC2) and returns every
 * private key and X.509 certificate with its `localKeyId` and `friendlyName`. Nothing is written to
 * disk and no OpenSSL legacy provider is used.
 *
 * `password`: `null` is no password, `''` the empty string; when the given one of these two fails,
 * the other is tried (see candidatePasswords). Iteration counts above the limits of
 * pbe.ts, and files needing more key-derivation work than a WorkBudget, are refused; so are files
 * holding more keys or certificates than one upload may (limits.ts), as soon as the count is passed.
 *
 * @throws CertificateError `java_keystore` (a JKS or JCEKS file), `unsupported_format` (not
 *   PKCS#12, truncated, unknown algorithms, public-key integrity or privacy modes, PBMAC1 without a
 *   key length of 20 to 512 bytes), `bad_password` (the MAC does not verify, or decryption fails),
 *   `unsupported_key_type` (a key node:crypto cannot load), `multiple_private_keys` and
 *   `chain_mismatch` (more keys or certificates than limits.ts allows).
 */
export function readPkcs12(
  data: Buffer,
  password: Password,
  budget: WorkBudget = new WorkBudget(),
): Pkcs12Contents {
  return wrapErrors('unsupported_format', 'The PKCS#12 file could not be read.', () =>
    decodePkcs12(data, password, budget),
  );
}

/**
 * `JKS` or `JCEKS` when `data` starts with the magic number of a Java keystore (0xFEEDFEED,
 * 0xCECECECE: sun.security.provider.JavaKeyStore, com.sun.crypto.provider.JceKeyStore), which only
 * Java reads; `undefined` otherwise.
 */
export function javaKeystoreType(data: Buffer): 'JKS' | 'JCEKS' | undefined {
  if (data.length < 4) return undefined;
  const magic = data.readUInt32BE(0);
  if (magic === 0xfeedfeed) return 'JKS';
  if (magic === 0xcececece) return 'JCEKS';
  return undefined;
}

/**
 * Refuses a Java keystore with the keytool command that converts it to PKCS#12.
 * @throws CertificateError `java_keystore` when `data` is a JKS or JCEKS file.
 */
export function refuseJavaKeystore(data: Buffer): void {
  const keystore = javaKeystoreType(data);
  if (keystore) {
    throw new CertificateError(
      'java_keystore',
      `This is a Java ${keystore} keystore, not PKCS#12. Convert it with keytool -importkeystore ` +
        '-srckeystore in.jks -destkeystore out.p12 -deststoretype PKCS12, and upload out.p12.',
    );
  }
}

function decodePkcs12(data: Buffer, password: Password, budget: WorkBudget): Pkcs12Contents {
  refuseJavaKeystore(data);
  const pfx = parseAsn1(data, Pfx, 'The file');
  if (pfx.version !== 3) {
    throw new CertificateError('unsupported_format', `PKCS#12 version ${pfx.version} is not supported.`);
  }
  if (pfx.authSafe.contentType !== OID.data) {
    // signedData: public-key integrity mode, which nobody uses for client identities.
    throw new CertificateError('unsupported_format', 'Only password-protected PKCS#12 files are supported.');
  }
  const authSafe = octetStringContent(pfx.authSafe.content, 'The PKCS#12 AuthenticatedSafe');
  const candidates = candidatePasswords(password);

  if (pfx.macData) {
    const verify = macVerifier(pfx.macData, authSafe, budget);
    const chosen = candidates.find((candidate) => verify(candidate));
    if (chosen === undefined) {
      throw new CertificateError('bad_password', 'The password does not open this file.');
    }
    const decoder = new Decoder(chosen, budget);
    decoder.authenticatedSafe(authSafe);
    return decoder.contents;
  }

  // No MAC (`openssl pkcs12 -nomac`): the password is right if everything decrypts and decodes.
  // Without a MAC, wrong-password garbage can pass a CBC padding check, so a decoding failure after
  // a decryption counts as a wrong password too; one before any decryption is a format problem.
  let failure: CertificateError | undefined;
  for (const candidate of candidates) {
    const decoder = new Decoder(candidate, budget);
    try {
      decoder.authenticatedSafe(authSafe);
      return decoder.contents;
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      // Limits hold whatever the password: another candidate would only spend more work.
      if (err instanceof WorkLimitError || err instanceof UploadLimitError) throw err;
      if (err.code !== 'bad_password' && !decoder.decrypted) throw err;
      failure = err;
    }
  }
  throw new CertificateError('bad_password', 'The password does not open this file.', { cause: failure });
}
