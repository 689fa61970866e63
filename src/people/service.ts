import type { Static } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { isEmailAddress } from '../shared/email-address.js';
import type { ApiKey, Member, PeopleStore, Role } from '../store/index.js';
import type { Principal, RolePermissions, TenantService } from '../tenants/service.js';
import {
  ALL_PERMISSIONS,
  BUILT_IN_ROLES,
  INTEGRATIONS_PERMISSION,
  isBuiltInRole,
  isPermission,
  PERMISSIONS,
  type Permission,
  permissionsOf,
} from './permissions.js';
import type { ApiKeyListItemSchema, CreatedApiKeySchema, MemberSchema, RoleSchema } from './schemas.js';

export type RoleView = Static<typeof RoleSchema>;
export type MemberView = Static<typeof MemberSchema>;
export type ApiKeyView = Static<typeof ApiKeyListItemSchema>;
export type CreatedApiKeyView = Static<typeof CreatedApiKeySchema>;

/**
 * What the caller of a change may itself do: nobody grants (to a role, a member, an API key or a
 * portal link) a permission it does not hold, so `members:write` alone cannot make an admin.
 */
export type Grantor = ReadonlySet<Permission>;

/** A page of a list: `limit` default 100 (max 1000), `cursor` from the previous page. */
export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** The permissions a principal may grant: the operator every one, a key or member its own. */
export function grantorOf(principal: Principal): Grantor {
  return principal.kind === 'operator' ? ALL_PERMISSIONS : principal.permissions;
}

/**
 * Throws `forbidden` naming what `grantor` lacks of `wanted`.
 * @throws AppError `forbidden`
 */
export function requireGrantable(grantor: Grantor, wanted: Iterable<Permission>, what: string): void {
  const missing = [...new Set(wanted)].filter((p) => !grantor.has(p));
  if (missing.length > 0) {
    throw new AppError('forbidden', `${what} needs ${missing.join(', ')}, which this caller does not hold.`);
  }
}

/**
 * {@link RolePermissions} over the store: built-in roles from the catalogue, custom ones read from
 * the tenant's roles (only when a custom name is asked for).
 */
export function rolePermissions(store: Pick<PeopleStore, 'listRoles'>): RolePermissions {
  return async (tenantId, roles) => {
    if (roles.every(isBuiltInRole)) return permissionsOf(roles, new Map());
    const custom = await store.listRoles(tenantId);
    return permissionsOf(roles, new Map(custom.map((r) => [r.name, { permissions: knownPermissions(r) }])));
  };
}

function knownPermissions(role: Pick<Role, 'permissions'>): Permission[] {
  return role.permissions.filter(isPermission);
}

export interface PeopleServiceDeps {
  store: Pick<
    PeopleStore,
    | 'putRole'
    | 'getRole'
    | 'listRoles'
    | 'deleteRole'
    | 'putMember'
    | 'getMember'
    | 'listMembers'
    | 'deleteMember'
  >;
  keys: Pick<TenantService, 'createApiKey' | 'listApiKeys' | 'getApiKey' | 'revokeApiKey'>;
  clock: Clock;
  changes: ChangeBus;
}

/**
 * Roles, members and API keys of a tenant (API.md "People"). Members are upserted under the
 * platform's own user ids. A role change is announced (`role`), so every process drops the
 * permissions it cached for API keys; member sessions read their member and roles on every
 * request, so a removed or demoted member loses access at once.
 */
export class PeopleService {
  readonly #deps: PeopleServiceDeps;
  readonly #permissions: RolePermissions;

  constructor(deps: PeopleServiceDeps) {
    this.#deps = deps;
    this.#permissions = rolePermissions(deps.store);
  }

  /** The permissions `roles` grant in the tenant now (unknown names grant nothing). */
  permissionsOf(tenantId: string, roles: readonly string[]): Promise<Set<Permission>> {
    return this.#permissions(tenantId, roles);
  }

  /** Built-in and custom roles, ordered by name. @throws AppError `bad_request` (cursor) */
  async listRoles(tenantId: string, page: PageRequest = {}): Promise<Page<RoleView>> {
    const custom = await this.#deps.store.listRoles(tenantId);
    const all = [...Object.values(BUILT_IN_ROLES).map(builtInView), ...custom.map(roleView)].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    return pageOf(page, async (afterId, limit) =>
      all
        .filter((r) => afterId === undefined || r.name > afterId)
        .slice(0, limit)
        .map((r) => ({ key: r.name, item: r })),
    );
  }

  /** @throws AppError `not_found` */
  async getRole(tenantId: string, name: string): Promise<RoleView> {
    if (isBuiltInRole(name)) return builtInView(BUILT_IN_ROLES[name]);
    const role = await this.#deps.store.getRole(tenantId, name);
    if (!role) throw new AppError('not_found', 'No such role.');
    return roleView(role);
  }

  /**
   * Creates or replaces a custom role.
   * @throws AppError `built_in_role` (admin, viewer), `forbidden` (a permission the grantor lacks)
   */
  async putRole(
    tenantId: string,
    name: string,
    input: { description?: string; permissions: readonly Permission[] },
    grantor: Grantor,
  ): Promise<{ created: boolean; role: RoleView }> {
    if (isBuiltInRole(name)) throw new AppError('built_in_role', `The role "${name}" is built in.`);
    requireGrantable(grantor, input.permissions, 'This role');
    const now = this.#deps.clock.now();
    const permissions = PERMISSIONS.filter((p) => input.permissions.includes(p));
    const role: Role = {
      tenantId,
      name,
      description: input.description ?? '',
      permissions,
      createdAt: now,
      updatedAt: now,
    };
    const created = await this.#deps.store.putRole(tenantId, role);
    await this.#deps.changes.emit({ tenantId, kind: 'role', id: name });
    return {
      created,
      role: roleView(created ? role : ((await this.#deps.store.getRole(tenantId, name)) ?? role)),
    };
  }

  /** @throws AppError `built_in_role`, `not_found`, `role_in_use` */
  async deleteRole(tenantId: string, name: string): Promise<void> {
    if (isBuiltInRole(name)) throw new AppError('built_in_role', `The role "${name}" is built in.`);
    const outcome = await this.#deps.store.deleteRole(tenantId, name);
    if (outcome === 'not_found') throw new AppError('not_found', 'No such role.');
    if (outcome === 'in_use') {
      throw new AppError('role_in_use', 'Members or API keys hold this role; take it from them first.');
    }
    await this.#deps.changes.emit({ tenantId, kind: 'role', id: name });
  }

  /**
   * Creates or replaces the member `memberId` (the platform's user id). The grantor must hold every
   * permission of the new roles and, for an existing member, of the member's current roles.
   * @throws AppError `bad_request` (e-mail), `unknown_role`, `forbidden`
   */
  async putMember(
    tenantId: string,
    memberId: string,
    input: { email: string; name?: string; roles: readonly string[] },
    grantor: Grantor,
  ): Promise<{ created: boolean; member: MemberView }> {
    const email = input.email.trim();
    if (!isEmailAddress(email)) throw new AppError('bad_request', 'The e-mail address is not valid.');
    const roles = [...new Set(input.roles)];
    await this.#requireKnownRoles(tenantId, roles);
    requireGrantable(grantor, await this.permissionsOf(tenantId, roles), 'These roles');
    const existing = await this.#deps.store.getMember(tenantId, memberId);
    if (existing) await this.requireManageable(tenantId, existing, grantor);
    const now = this.#deps.clock.now();
    const result = await this.#deps.store.putMember(tenantId, {
      tenantId,
      id: memberId,
      email,
      ...(input.name !== undefined && input.name !== '' ? { name: input.name } : {}),
      roles,
      createdAt: now,
      updatedAt: now,
    });
    return { created: result.created, member: memberView(result.member) };
  }

  /** @throws AppError `not_found` */
  async getMember(tenantId: string, memberId: string): Promise<MemberView> {
    return memberView(await this.requireMember(tenantId, memberId));
  }

  /** The stored member. @throws AppError `not_found` */
  async requireMember(tenantId: string, memberId: string): Promise<Member> {
    const member = await this.#deps.store.getMember(tenantId, memberId);
    if (!member) throw new AppError('not_found', 'No such member.');
    return member;
  }

  /** Ordered by id. @throws AppError `bad_request` for a cursor this service did not make */
  async listMembers(tenantId: string, page: PageRequest = {}): Promise<Page<MemberView>> {
    return pageOf(page, (afterId, limit) =>
      this.#deps.store
        .listMembers(tenantId, { limit, ...(afterId !== undefined ? { afterId } : {}) })
        .then((members) => members.map((m) => ({ key: m.id, item: memberView(m) }))),
    );
  }

  /**
   * Deletes the member and ends its sessions at once.
   * @throws AppError `not_found`, `forbidden` (the member holds a permission the grantor lacks)
   */
  async deleteMember(tenantId: string, memberId: string, grantor: Grantor): Promise<void> {
    const member = await this.requireMember(tenantId, memberId);
    await this.requireManageable(tenantId, member, grantor);
    if (!(await this.#deps.store.deleteMember(tenantId, memberId))) {
      throw new AppError('not_found', 'No such member.');
    }
  }

  /** Throws `forbidden` unless the grantor holds every permission `member` has now. */
  async requireManageable(tenantId: string, member: Member, grantor: Grantor): Promise<void> {
    requireGrantable(grantor, await this.permissionsOf(tenantId, member.roles), 'Acting on this member');
  }

  /**
   * The e-mail addresses of members whose roles grant `connections:write` (`admin` does): who owns
   * the tenant's integrations, and so hears about expiring certificates.
   */
  async integrationOwners(tenantId: string): Promise<string[]> {
    const custom = new Map(
      (await this.#deps.store.listRoles(tenantId)).map((r) => [r.name, { permissions: knownPermissions(r) }]),
    );
    const emails: string[] = [];
    let afterId: string | undefined;
    for (;;) {
      const batch = await this.#deps.store.listMembers(tenantId, {
        limit: MAX_LIMIT,
        ...(afterId !== undefined ? { afterId } : {}),
      });
      for (const member of batch) {
        if (permissionsOf(member.roles, custom).has(INTEGRATIONS_PERMISSION)) emails.push(member.email);
      }
      if (batch.length < MAX_LIMIT) return emails;
      afterId = batch[batch.length - 1]?.id;
    }
  }

  /**
   * Creates an API key with `roles` (default `["admin"]`); the secret is in the answer only.
   * @throws AppError `unknown_role`, `forbidden`
   */
  async createApiKey(
    tenantId: string,
    input: { name?: string; roles?: readonly string[] },
    grantor: Grantor,
  ): Promise<CreatedApiKeyView> {
    const roles = [...new Set(input.roles ?? [BUILT_IN_ROLES.admin.name])];
    await this.#requireKnownRoles(tenantId, roles);
    requireGrantable(grantor, await this.permissionsOf(tenantId, roles), 'A key with these roles');
    const { apiKey, key } = await this.#deps.keys.createApiKey(tenantId, {
      roles,
      ...(input.name !== undefined ? { name: input.name } : {}),
    });
    return { id: key.id, apiKey, name: key.name, roles: key.roles, createdAt: key.createdAt.toISOString() };
  }

  /** Unrevoked keys, without secrets, ordered by id. */
  async listApiKeys(tenantId: string, page: PageRequest = {}): Promise<Page<ApiKeyView>> {
    return pageOf(page, (afterId, limit) =>
      this.#deps.keys
        .listApiKeys(tenantId, { limit, ...(afterId !== undefined ? { afterId } : {}) })
        .then((keys) => keys.map((k) => ({ key: k.id, item: apiKeyView(k) }))),
    );
  }

  /**
   * Revokes a key at once (every process). The grantor must hold every permission the key has.
   * @throws AppError `not_found`, `forbidden`
   */
  async revokeApiKey(tenantId: string, keyId: string, grantor: Grantor): Promise<void> {
    const key = await this.#deps.keys.getApiKey(tenantId, keyId);
    if (!key) throw new AppError('not_found', 'No such API key.');
    requireGrantable(grantor, await this.permissionsOf(tenantId, key.roles), 'Revoking this key');
    await this.#deps.keys.revokeApiKey(tenantId, keyId);
  }

  /** @throws AppError `unknown_role` before anything else is checked (the store checks again). */
  async #requireKnownRoles(tenantId: string, roles: readonly string[]): Promise<void> {
    const custom = roles.filter((r) => !isBuiltInRole(r));
    if (custom.length === 0) return;
    const known = new Set((await this.#deps.store.listRoles(tenantId)).map((r) => r.name));
    const missing = custom.filter((r) => !known.has(r));
    if (missing.length > 0) {
      throw new AppError('unknown_role', `No role named ${missing.map((m) => `"${m}"`).join(', ')}.`);
    }
  }
}

/**
 * One page of a list ordered by a unique key: asks `fetch` for `limit + 1` rows after the cursor's
 * key, and makes the next cursor from the last row shown.
 * @throws AppError `bad_request` for a cursor this module did not make
 */
async function pageOf<T>(
  page: PageRequest,
  fetch: (afterId: string | undefined, limit: number) => Promise<{ key: string; item: T }[]>,
): Promise<Page<T>> {
  const limit = Math.min(Math.max(page.limit ?? DEFAULT_LIMIT, 1), MAX_LIMIT);
  const afterId = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  const rows = await fetch(afterId, limit + 1);
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1];
  return {
    items: shown.map((r) => r.item),
    ...(rows.length > limit && last ? { nextCursor: encodeCursor(last.key) } : {}),
  };
}

function encodeCursor(key: string): string {
  return Buffer.from(`p1:${key}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith('p1:') || text.length < 4)
    throw new AppError('bad_request', 'The cursor is not valid.');
  return text.slice(3);
}

function builtInView(role: (typeof BUILT_IN_ROLES)[keyof typeof BUILT_IN_ROLES]): RoleView {
  return {
    name: role.name,
    description: role.description,
    permissions: [...role.permissions],
    builtIn: true,
  };
}

function roleView(role: Role): RoleView {
  return {
    name: role.name,
    description: role.description,
    permissions: knownPermissions(role),
    builtIn: false,
    createdAt: role.createdAt.toISOString(),
    updatedAt: role.updatedAt.toISOString(),
  };
}

/** A member as the API shows it (API.md "Member"). */
export function memberView(member: Member): MemberView {
  return {
    id: member.id,
    tenant: member.tenantId,
    email: member.email,
    name: member.name ?? null,
    roles: member.roles,
    createdAt: member.createdAt.toISOString(),
    updatedAt: member.updatedAt.toISOString(),
  };
}

function apiKeyView(key: ApiKey): ApiKeyView {
  return {
    id: key.id,
    name: key.name,
    roles: key.roles,
    createdAt: key.createdAt.toISOString(),
    ...(key.lastUsedAt ? { lastUsedAt: key.lastUsedAt.toISOString() } : {}),
  };
}
