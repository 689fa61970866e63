/**
 * Which client certificates the edge admits. The TLS layer accepts any certificate (see
 * edge-server.ts for why that is safe); the decision is made here, from the fingerprint index:
 * O(1) per handshake and per request.
 */
import type { X509Certificate } from 'node:crypto';
import { tenantOfSubjectAltNames } from '../ca/naming.js';
import type { ErrorCode } from '../errors/catalogue.js';
import type { ClientCertificateStore } from '../store/index.js';
import type { ClientCertificateIndex, EdgeEntry } from './certificate-index.js';

/** Why a client certificate is refused (catalogue codes, 401/403). */
export type RefusalCode = Extract<
  ErrorCode,
  | 'client_certificate_required'
  | 'client_certificate_unknown'
  | 'client_certificate_revoked'
  | 'client_certificate_expired'
  | 'client_certificate_not_yet_valid'
>;

/**
 * The refusal for a certificate's current index entry at `nowMs`, or null when it is admitted: it
 * must be registered (or issued to a tenant and found in the store, see {@link platformIssuedLookup}),
 * not revoked, and within notBefore..notAfter (RFC 5280 §4.1.2.5, both inclusive). Run for every
 * request, not only at the handshake, so a revocation also refuses the next request of a connection
 * that is already open.
 */
export function refusalFor(entry: EdgeEntry | undefined, nowMs: number): RefusalCode | null {
  if (entry === undefined) return 'client_certificate_unknown';
  if (entry.revoked) return 'client_certificate_revoked';
  if (nowMs > entry.notAfterMs) return 'client_certificate_expired';
  if (nowMs < entry.notBeforeMs) return 'client_certificate_not_yet_valid';
  return null;
}

/**
 * The second way in: a certificate that is not (yet) in this process's index but chains to the
 * platform CA (an issuing-CA signature check) and names a tenant in its `urn:twoway:tenant:` URI
 * SAN. It is looked up in the store by fingerprint (another replica may have issued it a moment
 * ago) and admitted only when the store has it live in that same tenant; the index is then synced.
 * Only certificates the platform CA signed reach the store, so unknown certificates cannot be used to
 * load the database.
 */
export function platformIssuedLookup(deps: {
  issuedByPlatformCa(cert: X509Certificate): Promise<boolean>;
  store: Pick<ClientCertificateStore, 'findClientCertificateByFingerprint'>;
  index: ClientCertificateIndex;
}): (cert: X509Certificate, fingerprintSha256: string) => Promise<EdgeEntry | undefined> {
  return async (cert, fingerprintSha256) => {
    if (!(await deps.issuedByPlatformCa(cert))) return undefined;
    const stored = await deps.store.findClientCertificateByFingerprint(fingerprintSha256);
    if (stored?.source !== 'issued') return undefined;
    if (tenantOfSubjectAltNames(stored.summary.subjectAltNames) !== stored.tenantId) return undefined;
    await deps.index.sync();
    return deps.index.get(fingerprintSha256);
  };
}
