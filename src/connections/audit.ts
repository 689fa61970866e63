import type { AuditNote } from '../lifecycle/audit.js';
import type { ConnectionView } from './service.js';

/**
 * The audit notes of connection changes, one function per action, used by the HTTP routes and the
 * CLI alike (see `AuditNote` in lifecycle/audit.ts). A connection appears by its settings, never by
 * its secret (which no view holds) or its trust anchor PEM.
 */

/** What an audit entry keeps of a connection. */
function connectionFacts(view: ConnectionView): Record<string, unknown> {
  return {
    name: view.name,
    baseUrl: view.baseUrl,
    authType: view.auth.type,
    clientCertificate: {
      enabled: view.clientCertificate.enabled,
      ...(view.clientCertificate.identityId !== undefined
        ? { identityId: view.clientCertificate.identityId }
        : {}),
    },
    enabled: view.enabled,
  };
}

/** `connection.create`. */
export function connectionCreated(view: ConnectionView): AuditNote {
  return {
    action: 'connection.create',
    objectType: 'connection',
    objectId: view.id,
    detail: connectionFacts(view),
  };
}

/**
 * `connection.update`: `changed` names the fields the caller sent (`auth` when it sent auth settings,
 * with or without a new secret); the facts are the new ones.
 */
export function connectionUpdated(view: ConnectionView, changed: string[]): AuditNote {
  return {
    action: 'connection.update',
    objectType: 'connection',
    objectId: view.id,
    detail: { changed, ...connectionFacts(view) },
  };
}

/** `connection.delete`: the connection and its sealed secret are gone. */
export function connectionDeleted(connectionId: string): AuditNote {
  return { action: 'connection.delete', objectType: 'connection', objectId: connectionId };
}
