/**
 * How an issued client certificate names its tenant: one subjectAltName URI (RFC 5280 §4.2.1.6)
 * `urn:twoway:tenant:<tenantId>`. Tenant ids match `^[a-z0-9][a-z0-9-]{1,62}$`, so the URI needs no
 * escaping. The edge and the platform upstream (XFCC `URI=`) read the tenant from it; the subject
 * DN is whatever the tenant put in its CSR and says nothing about the tenant.
 */
export const TENANT_URI_PREFIX = 'urn:twoway:tenant:';

/** `urn:twoway:tenant:<tenantId>`. */
export function tenantUri(tenantId: string): string {
  return `${TENANT_URI_PREFIX}${tenantId}`;
}

/**
 * The tenant named by a certificate's subjectAltNames as summarized (`URI:urn:twoway:tenant:acme`),
 * or undefined when none or more than one tenant URI is present.
 */
export function tenantOfSubjectAltNames(subjectAltNames: readonly string[]): string | undefined {
  const tenants = subjectAltNames
    .filter((name) => name.startsWith(`URI:${TENANT_URI_PREFIX}`))
    .map((name) => name.slice(`URI:${TENANT_URI_PREFIX}`.length));
  return tenants.length === 1 ? tenants[0] : undefined;
}
