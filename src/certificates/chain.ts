/**
 * Orders the certificates uploaded with a leaf into a path leaf → intermediates (→ root), checking
 * every link by issuer name and by signature (RFC 5280 §6.1.3 (a)(1) and (a)(4)). Users upload chains
 * in any order (kubernetes/ingress-nginx#7799); we repair the order, never a missing or wrong link.
 */
import type { X509Certificate } from 'node:crypto';
import { CertificateError } from './errors.js';
import { subjectOfDer } from './names.js';
import { fingerprintSha256 } from './summary.js';

/** A path from the leaf: `chain` holds the intermediates leaf-first; a self-signed root goes to `root`. */
export interface BuiltChain {
  chain: X509Certificate[];
  root?: X509Certificate;
}

/**
 * True when `parent` issued `child`: names match (OpenSSL's X509_check_issued also compares the
 * authority/subject key identifiers and the issuer's keyUsage) and `parent`'s key verifies
 * `child`'s signature.
 */
export function isIssuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    // A key type OpenSSL cannot verify with is, for path building, not a link.
    return false;
  }
}

/** True when the certificate is issued by itself and its own key verifies its signature. */
export function isSelfSigned(cert: X509Certificate): boolean {
  return isIssuedBy(cert, cert);
}

/**
 * Most certificates besides the leaf that {@link buildChain} takes (intermediates and a root; real
 * chains have one to three). Building is quadratic in this number in the worst case (names that
 * all match, so every candidate's signature is tried for every link).
 */
export const MAX_CHAIN_CERTIFICATES = 10;

/**
 * Builds the path from `leaf` through `candidates` (in any order, duplicates and copies of the leaf
 * ignored). The path stops at a self-signed certificate, which is returned as `root` and not part of
 * `chain` (the remote server holds its roots), or where no candidate issued the last certificate: the
 * chain need not reach a root.
 *
 * @throws CertificateError `chain_mismatch` when a candidate is left over: an unrelated certificate,
 *   a missing link between the leaf and it, or a certificate whose signature does not verify; or
 *   when there are more than {@link MAX_CHAIN_CERTIFICATES} candidates.
 */
export function buildChain(leaf: X509Certificate, candidates: X509Certificate[]): BuiltChain {
  const seen = new Set([fingerprintSha256(leaf)]);
  const remaining: X509Certificate[] = [];
  for (const cert of candidates) {
    const fingerprint = fingerprintSha256(cert);
    if (seen.has(fingerprint)) continue;
    seen.add(fingerprint);
    remaining.push(cert);
  }
  // Each link may try every candidate's signature: bound the work before doing any.
  if (remaining.length > MAX_CHAIN_CERTIFICATES) {
    throw new CertificateError(
      'chain_mismatch',
      `The upload holds ${remaining.length} certificates besides the leaf; a chain has at most ${MAX_CHAIN_CERTIFICATES}.`,
    );
  }

  const result: BuiltChain = { chain: [] };
  let current = leaf;
  while (!isSelfSigned(current)) {
    const index = remaining.findIndex((candidate) => isIssuedBy(current, candidate));
    if (index < 0) break;
    const [next] = remaining.splice(index, 1);
    if (!next) break;
    if (isSelfSigned(next)) {
      result.root = next;
      break;
    }
    result.chain.push(next);
    current = next;
  }

  const leftover = remaining[0];
  if (leftover) {
    throw new CertificateError(
      'chain_mismatch',
      `The certificate "${subjectOfDer(leftover.raw)}" (${fingerprintSha256(leftover)}) is not part of the ` +
        `leaf's chain: a link is missing, or it did not issue the certificate below it.`,
    );
  }
  return result;
}
