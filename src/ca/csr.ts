/**
 * PKCS#10 certificate signing requests (RFC 2986): read from PEM (`CERTIFICATE REQUEST`, or the
 * older `NEW CERTIFICATE REQUEST`) or DER, and the self-signature checked with the request's own key,
 * which proves that whoever sent it holds the private key (RFC 2986 §3, step 3). Only the subject and
 * the public key are used: requested extensions and attributes are ignored, the CA decides those,
 * except that a request asking for a key usage without digitalSignature is refused (its key is
 * meant for something other than signing TLS handshakes).
 */
import { constants, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { CertificationRequestInfo } from '@peculiar/asn1-csr';
import { RsaSaPssParams } from '@peculiar/asn1-rsa';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateOuter } from '../certificates/asn1.js';
import { checkRequestedKeyUsage, formatName, parsePemBlocks } from '../certificates/index.js';
import { AppError, toAppError } from '../errors/app-error.js';

/** What the CA takes from a verified CSR. */
export interface VerifiedCsr {
  /** DER of the subject Name, copied into the certificate as is. */
  subjectDer: ArrayBuffer;
  /** RFC 4514, most specific first; `''` for an empty subject. */
  subject: string;
  /** DER SubjectPublicKeyInfo. */
  spkiDer: Buffer;
  publicKey: KeyObject;
}

/** Signature algorithms a CSR may use: SHA-256 or stronger (RFC 4055, RFC 5758, RFC 8410). */
const VERIFIERS: Record<string, { hash: string | null; pss?: true }> = {
  '1.2.840.113549.1.1.11': { hash: 'sha256' },
  '1.2.840.113549.1.1.12': { hash: 'sha384' },
  '1.2.840.113549.1.1.13': { hash: 'sha512' },
  '1.2.840.10045.4.3.2': { hash: 'sha256' },
  '1.2.840.10045.4.3.3': { hash: 'sha384' },
  '1.2.840.10045.4.3.4': { hash: 'sha512' },
  '1.3.101.112': { hash: null },
  '1.2.840.113549.1.1.10': { hash: null, pss: true },
};

/** MD5, SHA-1 and SHA-224 based signatures: refused as `weak_signature`. */
const WEAK = new Set([
  '1.2.840.113549.1.1.4',
  '1.2.840.113549.1.1.5',
  '1.2.840.113549.1.1.14',
  '1.2.840.10045.4.1',
  '1.2.840.10045.4.3.1',
  '1.2.840.10040.4.3',
]);

/** PKCS#9 extensionRequest (RFC 2985 §5.4.2): the extensions a CSR asks for. */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** Hash OIDs usable inside RSASSA-PSS parameters (RFC 4055 §2.1). */
const PSS_HASHES: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

function invalid(detail: string, cause?: unknown): AppError {
  return new AppError('invalid_csr', detail, cause === undefined ? undefined : { cause });
}

/** The DER of the request: the one CSR block of PEM text, or the input itself. */
function csrDer(input: Buffer): Buffer {
  if (!input.includes('-----BEGIN ')) return input;
  let blocks: ReturnType<typeof parsePemBlocks>;
  try {
    blocks = parsePemBlocks(input.toString('utf8'));
  } catch (err) {
    throw invalid('The CSR is not valid PEM.', err);
  }
  if (blocks.some((b) => b.label.endsWith('PRIVATE KEY'))) {
    throw new AppError('private_key_not_accepted', 'Send the CSR only: the private key stays with you.');
  }
  const requests = blocks.filter(
    (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
  );
  const [first] = requests;
  if (!first || requests.length > 1) throw invalid('Send exactly one PEM "CERTIFICATE REQUEST" block.');
  return first.der;
}

/** Checks one extensionRequest value; an undecodable one is `invalid_csr`. */
function checkRequested(extensionsDer: ArrayBuffer): void {
  try {
    checkRequestedKeyUsage(extensionsDer);
  } catch (err) {
    const refusal = toAppError(err);
    if (refusal.code === 'unsupported_format') throw invalid('The requested extensions do not decode.', err);
    throw refusal;
  }
}

/**
 * Reads a CSR and verifies its signature with its own public key.
 * @throws AppError `invalid_csr` (unreadable, not PKCS#10, unsupported key or signature algorithm,
 *   signature does not verify, unreadable requested extensions), `weak_signature` (MD5, SHA-1,
 *   SHA-224), `private_key_not_accepted` (a private key came along), `digital_signature_not_allowed`
 *   (a requested keyUsage without digitalSignature).
 */
export function readCsr(input: Buffer): VerifiedCsr {
  const der = csrDer(input);
  let outer: CertificateOuter;
  let info: CertificationRequestInfo;
  try {
    outer = AsnConvert.parse(der as BufferSource, CertificateOuter);
    info = AsnConvert.parse(outer.tbsCertificate, CertificationRequestInfo);
  } catch (err) {
    throw invalid('The CSR is not a PKCS#10 certification request.', err);
  }
  const spkiDer = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch (err) {
    throw invalid("The CSR's public key algorithm is not supported.", err);
  }
  const { algorithm, parameters } = outer.signatureAlgorithm;
  if (WEAK.has(algorithm)) {
    throw new AppError(
      'weak_signature',
      'The CSR is signed with MD5, SHA-1 or SHA-224; use SHA-256 or stronger.',
    );
  }
  const verifier = VERIFIERS[algorithm];
  if (!verifier) throw invalid(`The CSR signature algorithm ${algorithm} is not supported.`);
  const signature = Buffer.from(outer.signatureValue);
  const tbs = Buffer.from(outer.tbsCertificate);
  let ok = false;
  try {
    if (verifier.pss) {
      if (!parameters) throw invalid('The RSASSA-PSS signature has no parameters.');
      const pss = AsnConvert.parse(parameters, RsaSaPssParams);
      const hash = PSS_HASHES[pss.hashAlgorithm.algorithm];
      if (!hash) {
        throw new AppError(
          'weak_signature',
          'The CSR is signed with RSASSA-PSS over a hash weaker than SHA-256.',
        );
      }
      ok = verify(
        hash,
        tbs,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength },
        signature,
      );
    } else {
      ok = verify(verifier.hash, tbs, publicKey, signature);
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw invalid('The CSR signature could not be checked.', err);
  }
  if (!ok) throw invalid('The CSR signature does not verify with its own public key.');
  for (const attribute of info.attributes ?? []) {
    if (attribute.type !== EXTENSION_REQUEST) continue;
    for (const value of attribute.values) checkRequested(value);
  }
  return {
    subjectDer: AsnConvert.serialize(info.subject),
    subject: formatName(info.subject),
    spkiDer,
    publicKey,
  };
}
