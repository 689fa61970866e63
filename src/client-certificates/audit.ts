import type { AuditNote } from '../lifecycle/audit.js';
import type { RevocationReason } from '../store/index.js';
import type { ClientCertificateView } from './service.js';

/**
 * The audit notes of client certificate changes, one function per action, used by the HTTP routes
 * and the CLI alike (see `AuditNote` in lifecycle/audit.ts). A certificate appears by fingerprint
 * (and serial number when the platform CA issued it), never as PEM.
 */

/** `client_certificate.create`: a tenant's own certificate registered (BYOC). */
export function clientCertificateRegistered(view: ClientCertificateView): AuditNote {
  return {
    action: 'client_certificate.create',
    objectType: 'client_certificate',
    objectId: view.id,
    detail: { source: 'uploaded', fingerprintSha256: view.fingerprintSha256, name: view.name },
  };
}

/** `client_certificate.issue`: issued by the platform CA from a CSR. */
export function clientCertificateIssued(view: ClientCertificateView): AuditNote {
  return {
    action: 'client_certificate.issue',
    objectType: 'client_certificate',
    objectId: view.id,
    detail: {
      source: 'issued',
      fingerprintSha256: view.fingerprintSha256,
      serialNumber: view.serialNumber,
      notAfter: view.notAfter,
    },
  };
}

/** `client_certificate.revoke`, with the CRL reason code (RFC 5280 §5.3.1). */
export function clientCertificateRevoked(view: ClientCertificateView, reason: RevocationReason): AuditNote {
  return {
    action: 'client_certificate.revoke',
    objectType: 'client_certificate',
    objectId: view.id,
    detail: { fingerprintSha256: view.fingerprintSha256, reason },
  };
}

/** `client_certificate.delete`: deleted (an issued one revoked first). */
export function clientCertificateDeleted(id: string): AuditNote {
  return { action: 'client_certificate.delete', objectType: 'client_certificate', objectId: id };
}
