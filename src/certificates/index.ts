/**
 * certificates/: pure PKI for Twoway. PEM/DER (RFC 7468, RFC 5280), PKCS#12 (RFC 7292, RFC 9579),
 * private keys (RFC 5958, RFC 8017, RFC 5915), chains and summaries. Imports nothing of the project.
 */
export { type BuiltChain, buildChain, isIssuedBy, isSelfSigned } from './chain.js';
export { CertificateError, type CertificateErrorCode, isCertificateError } from './errors.js';
export { type IdentityUpload, readIdentity, type ValidatedIdentity } from './identity.js';
export {
  IdentityParser,
  type IdentityParserOptions,
  type ParsedIdentity,
  ParseQueueFullError,
} from './identity-parser.js';
export {
  checkKeyPolicy,
  describeKey,
  type KeyDescription,
  MIN_RSA_BITS,
  privateKeyFromDer,
  privateKeyFromPem,
  privateKeyFromPkcs8,
} from './keys.js';
export { formatName } from './names.js';
export {
  type PemBlock,
  parsePemBlocks,
  readCertificates,
  readTrustAnchors,
  TRUST_ANCHORS_MAX_BYTES,
  TRUST_ANCHORS_MAX_CERTIFICATES,
  toPem,
} from './pem.js';
export { javaKeystoreType, type Pkcs12Contents, readPkcs12 } from './pkcs12.js';
export {
  type CertificateStatus,
  certificateStatus,
  DAY_MS,
  type PresentationRefusal,
  presentationRefusal,
} from './status.js';
export {
  type CertificateSummary,
  type ChainEntry,
  chainEntry,
  fingerprintSha256,
  hasWeakSignature,
  signatureAlgorithmOf,
  spkiSha256,
  summarize,
} from './summary.js';
export { checkClientUsage, checkRequestedKeyUsage } from './usage.js';
