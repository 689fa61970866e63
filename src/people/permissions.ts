/**
 * The permission catalogue (API.md "People"): one verb on one kind of object. It is fixed: roles
 * are named sets of these, and every tenant route declares the one it needs (http/tenant-scope.ts).
 * This file imports nothing, so that the tenant service, the HTTP layer and the CLI can all use it.
 */

/** Every permission, in the order API.md lists them. */
export const PERMISSIONS = [
  'identities:read',
  'identities:write',
  'mappings:read',
  'mappings:write',
  'connections:read',
  'connections:write',
  'client-certificates:read',
  'client-certificates:write',
  'notifications:read',
  'notifications:write',
  'alerts:read',
  'audit:read',
  'members:write',
  'api-keys:write',
  'runtime:forward',
] as const;

/** One entry of {@link PERMISSIONS}. */
export type Permission = (typeof PERMISSIONS)[number];

/**
 * What a tenant route declares in `config.permission`: a permission, or `any` for the few routes
 * every caller of the tenant may use whatever its roles (reading the tenant's own name).
 */
export type RoutePermission = Permission | 'any';

/** The permission that makes a member receive expiry e-mails (with `notifyMembers`). */
export const INTEGRATIONS_PERMISSION: Permission = 'connections:write';

/** A role as the catalogue and the store know it. */
export interface RoleDefinition {
  name: string;
  description: string;
  permissions: readonly Permission[];
  builtIn: boolean;
}

/** `admin` holds every permission; `viewer` every `:read` one. They cannot be changed or deleted. */
export const BUILT_IN_ROLES: Readonly<Record<'admin' | 'viewer', RoleDefinition>> = {
  admin: {
    name: 'admin',
    description: 'Every permission',
    permissions: PERMISSIONS,
    builtIn: true,
  },
  viewer: {
    name: 'viewer',
    description: 'Read everything, change nothing',
    permissions: PERMISSIONS.filter((p) => p.endsWith(':read')),
    builtIn: true,
  },
};

/** True for `admin` and `viewer`. */
export function isBuiltInRole(name: string): name is keyof typeof BUILT_IN_ROLES {
  return Object.hasOwn(BUILT_IN_ROLES, name);
}

/** True when `value` names a permission of the catalogue. */
export function isPermission(value: unknown): value is Permission {
  return typeof value === 'string' && (PERMISSIONS as readonly string[]).includes(value);
}

/** `^[a-z][a-z0-9-]{0,62}$`: role names, built-in and custom. */
export const ROLE_NAME_PATTERN = '^[a-z][a-z0-9-]{0,62}$';

/**
 * The union of the permissions of `roles`, looked up in the built-in roles and then in `custom`
 * (the tenant's own roles by name). A name found in neither grants nothing.
 */
export function permissionsOf(
  roles: readonly string[],
  custom: ReadonlyMap<string, { permissions: readonly Permission[] }>,
): Set<Permission> {
  const granted = new Set<Permission>();
  for (const role of roles) {
    const definition = isBuiltInRole(role) ? BUILT_IN_ROLES[role] : custom.get(role);
    for (const permission of definition?.permissions ?? []) granted.add(permission);
  }
  return granted;
}

/** Every permission, for the operator (token or console session). */
export const ALL_PERMISSIONS: ReadonlySet<Permission> = new Set(PERMISSIONS);
