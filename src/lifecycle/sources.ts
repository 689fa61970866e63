import type { IdentityService } from '../identities/service.js';

/**
 * One certificate the expiry scanner watches: the object it belongs to, which version of it (an
 * identity's version number; for objects without versions, the certificate fingerprint), and its
 * notAfter. Public facts only.
 */
export interface ExpiringObject {
  tenantId: string;
  /** `identity`, `client_certificate`, ...: also the `kind` label of the not-after gauge. */
  objectType: string;
  objectId: string;
  objectVersion: string;
  name: string;
  subject: string;
  fingerprintSha256: string;
  notAfter: Date;
}

/**
 * Where the scanner finds certificates of one object type. Sources reach their domain through its
 * service, never its tables. Adding an object type is one entry in the list given to the scanner
 * (see main.ts `expiringSources`).
 */
export interface ExpiringSource {
  readonly objectType: string;
  /** The tenant's live, enabled objects of this type (disabled, revoked or deleted ones raise no alert). */
  list(tenantId: string): Promise<ExpiringObject[]>;
}

/** Outbound identities: the active version of every identity that is not disabled or deleted. */
export function identitySource(identities: Pick<IdentityService, 'listAll'>): ExpiringSource {
  return {
    objectType: 'identity',
    async list(tenantId) {
      const views = await identities.listAll(tenantId);
      const objects: ExpiringObject[] = [];
      for (const identity of views) {
        if (identity.status === 'disabled') continue;
        const active = identity.versions.find((v) => v.version === identity.activeVersion);
        if (!active) continue;
        objects.push({
          tenantId,
          objectType: 'identity',
          objectId: identity.id,
          objectVersion: String(active.version),
          name: identity.name,
          subject: active.subject,
          fingerprintSha256: active.fingerprintSha256,
          notAfter: new Date(active.notAfter),
        });
      }
      return objects;
    },
  };
}

/**
 * Inbound client certificates (uploaded or issued): every live one that is not revoked. They have
 * no versions; the fingerprint marks "this certificate", so a replacement is a new object anyway.
 */
export function clientCertificateSource(clientCertificates: {
  listAll(tenantId: string): Promise<
    {
      id: string;
      name: string;
      status: string;
      subject: string;
      fingerprintSha256: string;
      notAfter: string;
    }[]
  >;
}): ExpiringSource {
  return {
    objectType: 'client_certificate',
    async list(tenantId) {
      const views = await clientCertificates.listAll(tenantId);
      return views
        .filter((c) => c.status !== 'revoked')
        .map((c) => ({
          tenantId,
          objectType: 'client_certificate',
          objectId: c.id,
          objectVersion: c.fingerprintSha256,
          name: c.name,
          subject: c.subject,
          fingerprintSha256: c.fingerprintSha256,
          notAfter: new Date(c.notAfter),
        }));
    },
  };
}
