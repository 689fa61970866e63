import type { AuditNote } from '../lifecycle/audit.js';
import type { CreatedApiKeyView, MemberView, RoleView } from './service.js';

/**
 * The audit notes of people changes, one function per action, used by the HTTP routes and the CLI
 * alike (see `AuditNote` in lifecycle/audit.ts). Keys, links and sessions appear by id or member,
 * never by their secret.
 */

/** `role.create` or `role.update`, with the permissions it now grants. */
export function roleSaved(role: RoleView, created: boolean): AuditNote {
  return {
    action: created ? 'role.create' : 'role.update',
    objectType: 'role',
    objectId: role.name,
    detail: { permissions: role.permissions },
  };
}

/** `role.delete`. */
export function roleDeleted(name: string): AuditNote {
  return { action: 'role.delete', objectType: 'role', objectId: name };
}

/** `member.create` or `member.update`, with the e-mail address and roles it now has. */
export function memberSaved(member: MemberView, created: boolean): AuditNote {
  return {
    action: created ? 'member.create' : 'member.update',
    objectType: 'member',
    objectId: member.id,
    detail: { email: member.email, roles: member.roles },
  };
}

/** `member.delete` (its sessions ended with it). */
export function memberDeleted(memberId: string): AuditNote {
  return { action: 'member.delete', objectType: 'member', objectId: memberId };
}

/** `api_key.create`, with its name and roles. */
export function apiKeyCreated(key: Pick<CreatedApiKeyView, 'id' | 'name' | 'roles'>): AuditNote {
  return {
    action: 'api_key.create',
    objectType: 'api_key',
    objectId: key.id,
    detail: { name: key.name, roles: key.roles },
  };
}

/** `api_key.revoke`. */
export function apiKeyRevoked(keyId: string): AuditNote {
  return { action: 'api_key.revoke', objectType: 'api_key', objectId: keyId };
}

/** `portal_link.create`: a link for `memberId`, good until `expiresAt` (never the link itself). */
export function portalLinkCreated(memberId: string, expiresAt: Date): AuditNote {
  return {
    action: 'portal_link.create',
    objectType: 'member',
    objectId: memberId,
    detail: { expiresAt: expiresAt.toISOString() },
  };
}

/** `session.start`: the member signed in with a portal link. */
export function sessionStarted(memberId: string): AuditNote {
  return {
    action: 'session.start',
    objectType: 'member',
    objectId: memberId,
    detail: { via: 'portal_link' },
  };
}

/** `session.end`: the member signed out. */
export function sessionEnded(memberId: string): AuditNote {
  return { action: 'session.end', objectType: 'member', objectId: memberId };
}
