import type { AuditNote } from '../lifecycle/audit.js';
import type { MappingView } from './service.js';

/**
 * The audit notes of mapping changes, one function per action, used by the HTTP routes and the CLI
 * alike (see `AuditNote` in lifecycle/audit.ts).
 */

/** What an audit entry keeps of a mapping: routing facts, not the trust anchor PEM. */
function mappingFacts(view: MappingView): Record<string, unknown> {
  return {
    name: view.name,
    service: view.service,
    url: view.url,
    match: view.match,
    identityId: view.identityId,
    enabled: view.enabled,
  };
}

/** `mapping.create`. */
export function mappingCreated(view: MappingView): AuditNote {
  return { action: 'mapping.create', objectType: 'mapping', objectId: view.id, detail: mappingFacts(view) };
}

/** `mapping.update`: `changed` names the fields the caller sent; the facts are the new ones. */
export function mappingUpdated(view: MappingView, changed: string[]): AuditNote {
  return {
    action: 'mapping.update',
    objectType: 'mapping',
    objectId: view.id,
    detail: { changed, ...mappingFacts(view) },
  };
}

/** `mapping.delete`: soft-deleted. */
export function mappingDeleted(mappingId: string): AuditNote {
  return { action: 'mapping.delete', objectType: 'mapping', objectId: mappingId };
}
