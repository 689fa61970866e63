/**
 * How much one upload may hold. Parsing is linear in the upload's size, but some checks compare
 * keys and certificates with each other (which certificate matches the key, which issued which), so
 * the counts are capped before anything is decoded: a megabyte of small Ed25519 keys is about 8,800
 * keys, and comparing each with each took ten seconds of the shared parse threads.
 */
import { MAX_CHAIN_CERTIFICATES } from './chain.js';
import { CertificateError } from './errors.js';

/**
 * Most private keys one upload may hold, copies included. An identity has exactly one; a PEM bundle
 * plus a separate key part, or a PKCS#12 file plus a PEM key, give it twice.
 */
export const MAX_UPLOAD_PRIVATE_KEYS = 4;

/**
 * Most certificates one upload may hold, copies included: the leaf, up to {@link MAX_CHAIN_CERTIFICATES}
 * intermediates and a root, each possibly given twice (a bundle and a chain part).
 */
export const MAX_UPLOAD_CERTIFICATES = 2 * (MAX_CHAIN_CERTIFICATES + 2);

/** A refusal because an upload holds more keys or certificates than allowed; never retried. */
export class UploadLimitError extends CertificateError {}

/**
 * Refuses an upload that would hold more than the allowed number of keys or certificates. Called
 * with the counts an upload would reach, before the new blocks or bags are decoded.
 *
 * @throws UploadLimitError `multiple_private_keys` (more than {@link MAX_UPLOAD_PRIVATE_KEYS} keys),
 *   `chain_mismatch` (more than {@link MAX_UPLOAD_CERTIFICATES} certificates).
 */
export function checkUploadCounts(privateKeys: number, certificates: number): void {
  if (privateKeys > MAX_UPLOAD_PRIVATE_KEYS) {
    throw new UploadLimitError(
      'multiple_private_keys',
      `The upload holds more than ${MAX_UPLOAD_PRIVATE_KEYS} private keys; give exactly one.`,
    );
  }
  if (certificates > MAX_UPLOAD_CERTIFICATES) {
    throw new UploadLimitError(
      'chain_mismatch',
      `The upload holds more than ${MAX_UPLOAD_CERTIFICATES} certificates; give the leaf and its chain ` +
        `(at most ${MAX_CHAIN_CERTIFICATES} certificates besides the leaf).`,
    );
  }
}
