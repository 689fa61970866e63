import type { AuditNote } from '../lifecycle/audit.js';
import type { Tenant } from '../store/index.js';

/**
 * The audit notes of tenant changes, one function per action, used by the HTTP routes and the CLI
 * alike (see `AuditNote` in lifecycle/audit.ts). A key appears by id, never by value; API key notes
 * are people/audit.ts's.
 */

/** `tenant.create`, with the id of the first API key made with it. */
export function tenantCreated(tenant: Tenant, apiKeyId: string): AuditNote {
  return {
    action: 'tenant.create',
    objectType: 'tenant',
    objectId: tenant.id,
    tenantId: tenant.id,
    detail: { name: tenant.name, apiKeyId },
  };
}
