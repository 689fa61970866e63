/**
 * Which client certificates the edge admits. The TLS layer accepts any certificate (see
 * edge-server.ts for why that is safe); the decision is made here, from the fingerprint index:
 * O(1) per handshake and per request. A certificate is admitted for a tenant, the one whose API key
 * the request carries, if that tenant registered it: several tenants may register the same public
 * certificate, and each registration is checked (revoked, validity) on its own.
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
 * The refusal for a certificate's current index entry (the registration of the API key's tenant) at
 * `nowMs`, or null when it is admitted: it must be registered by that tenant (or issued to it and
 * found in the store, see {@link platformIssuedLookup}),
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
 * ago) and admitted only when the store has it live, as issued, in that same tenant; the index is
 * then synced and that tenant's entry returned. Only certificates the platform CA signed reach the
 * store, so unknown certificates cannot be used to load the database.
 */
export function platformIssuedLookup(deps: {
  issuedByPlatformCa(cert: X509Certificate): Promise<boolean>;
  store: Pick<ClientCertificateStore, 'findClientCertificatesByFingerprint'>;
  index: ClientCertificateIndex;
}): (cert: X509Certificate, fingerprintSha256: string) => Promise<EdgeEntry | undefined> {
  return async (cert, fingerprintSha256) => {
    if (!(await deps.issuedByPlatformCa(cert))) return undefined;
    const stored = await deps.store.findClientCertificatesByFingerprint(fingerprintSha256);
    const issued = stored.find(
      (c) => c.source === 'issued' && tenantOfSubjectAltNames(c.summary.subjectAltNames) === c.tenantId,
    );
    if (issued === undefined) return undefined;
    await deps.index.sync();
    return deps.index.get(fingerprintSha256, issued.tenantId);
  };
}
