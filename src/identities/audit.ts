import type { AuditNote } from '../lifecycle/audit.js';
import type { IdentityView } from './service.js';

/**
 * The audit notes of identity changes, one function per action, used by the HTTP routes, the CLI
 * and the lifecycle scheduler alike (see `AuditNote` in lifecycle/audit.ts). A version appears by
 * number, fingerprint and notAfter, never by its PEM or key.
 */

/** Public facts of one version for an audit entry: number, fingerprintSha256, notAfter. */
function versionFacts(view: IdentityView, version: number): Record<string, unknown> {
  const v = view.versions.find((candidate) => candidate.version === version);
  return v ? { version, fingerprintSha256: v.fingerprintSha256, notAfter: v.notAfter } : { version };
}

/** `identity.create`: an identity imported with version 1 active. */
export function identityCreated(view: IdentityView): AuditNote {
  return {
    action: 'identity.create',
    objectType: 'identity',
    objectId: view.id,
    detail: { name: view.name, ...versionFacts(view, view.activeVersion) },
  };
}

/** `identity.update`: renamed, disabled or re-enabled; `changes` is what the caller asked for. */
export function identityUpdated(
  view: IdentityView,
  changes: { name?: string; disabled?: boolean },
): AuditNote {
  return { action: 'identity.update', objectType: 'identity', objectId: view.id, detail: { ...changes } };
}

/** `identity.delete`: soft-deleted. */
export function identityDeleted(identityId: string): AuditNote {
  return { action: 'identity.delete', objectType: 'identity', objectId: identityId };
}

/**
 * `identity.add_version`: the newest version of `view` was added; `activated` says whether it is
 * now the active one (then with `previousVersion`, the active one of `before`), `activateAt` when
 * the scheduler will activate it.
 */
export function versionAdded(before: IdentityView, view: IdentityView): AuditNote {
  const added = Math.max(...view.versions.map((v) => v.version));
  const activated = view.activeVersion === added;
  const scheduled = view.versions.find((v) => v.version === added)?.activateAt;
  return {
    action: 'identity.add_version',
    objectType: 'identity',
    objectId: view.id,
    detail: {
      ...versionFacts(view, added),
      activated,
      ...(activated ? { previousVersion: before.activeVersion } : {}),
      ...(scheduled ? { activateAt: scheduled } : {}),
    },
  };
}

/**
 * `identity.activate_version`: `version` became the active one, replacing `previousVersion`; by
 * hand, or by the scheduler at the `scheduledFor` the version was uploaded with.
 */
export function versionActivated(
  view: IdentityView,
  version: number,
  previousVersion: number,
  scheduledFor?: Date,
): AuditNote {
  return {
    action: 'identity.activate_version',
    objectType: 'identity',
    objectId: view.id,
    detail: {
      ...versionFacts(view, version),
      previousVersion,
      ...(scheduledFor ? { scheduledFor: scheduledFor.toISOString() } : {}),
    },
  };
}

/** `identity.cancel_activation`: the scheduled activation of `version` was cancelled. */
export function activationCancelled(identityId: string, version: number): AuditNote {
  return {
    action: 'identity.cancel_activation',
    objectType: 'identity',
    objectId: identityId,
    detail: { version },
  };
}

/**
 * `identity.activation_failed`: the scheduler could not activate `version` at `scheduledFor`
 * (`code`: the AppError code, e.g. `version_not_usable`) and dropped the schedule.
 */
export function activationFailed(
  identityId: string,
  version: number,
  scheduledFor: Date,
  code: string,
): AuditNote {
  return {
    action: 'identity.activation_failed',
    objectType: 'identity',
    objectId: identityId,
    detail: { version, scheduledFor: scheduledFor.toISOString(), code },
  };
}
