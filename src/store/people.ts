/**
 * The people aggregate: tables `roles`, `members`, `sessions` and `portal_links`. Role names held
 * by API keys (tenants.ts) are checked through the query passed in by kysely-store.ts.
 */
import type { Selectable, Transaction } from 'kysely';
import { AppError } from '../errors/app-error.js';
import { isBuiltInRole } from '../people/permissions.js';
import { fromMs, toMs } from './columns.js';
import { Aggregate, type StoreDatabase, Unchanged } from './database.js';
import type { Database, MembersTable, PortalLinksTable, RolesTable, SessionsTable } from './tables.js';
import type {
  Member,
  PeopleStore,
  PortalLinkRecord,
  Role,
  RoleDeletion,
  SessionRecord,
  SessionSubject,
} from './types.js';

/** True when an unrevoked API key of the tenant holds `role` (tenants.ts provides it). */
export type KeysHoldingRole = (
  trx: Transaction<Database>,
  tenantId: string,
  role: string,
) => Promise<boolean>;

/**
 * Throws `unknown_role` unless every name of `roles` is built-in or a custom role of the tenant;
 * runs inside the caller's write transaction, so a role cannot be deleted between check and use.
 * @throws AppError `unknown_role`
 */
export async function requireRoles(
  trx: Transaction<Database>,
  tenantId: string,
  roles: readonly string[],
): Promise<void> {
  const custom = [...new Set(roles.filter((r) => !isBuiltInRole(r)))];
  if (custom.length === 0) return;
  const found = await trx
    .selectFrom('roles')
    .select('name')
    .where('tenant_id', '=', tenantId)
    .where('name', 'in', custom)
    .execute();
  const missing = custom.filter((name) => !found.some((row) => row.name === name));
  if (missing.length > 0) {
    throw new AppError('unknown_role', `No role named ${missing.map((m) => `"${m}"`).join(', ')}.`);
  }
}

/** {@link PeopleStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyPeopleStore extends Aggregate implements PeopleStore {
  readonly #keysHoldingRole: KeysHoldingRole;

  constructor(database: StoreDatabase, keysHoldingRole: KeysHoldingRole) {
    super(database);
    this.#keysHoldingRole = keysHoldingRole;
  }

  async putRole(tenantId: string, role: Role): Promise<boolean> {
    return this.database.write(async (trx) => {
      const changed = await trx
        .updateTable('roles')
        .set({
          description: role.description,
          permissions_json: JSON.stringify(role.permissions),
          updated_at: toMs(role.updatedAt),
        })
        .where('tenant_id', '=', tenantId)
        .where('name', '=', role.name)
        .executeTakeFirst();
      if (changed.numUpdatedRows > 0n) return false;
      await trx
        .insertInto('roles')
        .values({
          tenant_id: tenantId,
          name: role.name,
          description: role.description,
          permissions_json: JSON.stringify(role.permissions),
          created_at: toMs(role.createdAt),
          updated_at: toMs(role.updatedAt),
        })
        .execute();
      return true;
    });
  }

  async getRole(tenantId: string, name: string): Promise<Role | undefined> {
    return this.database.first(this.database.ofTenant('roles', tenantId).where('name', '=', name), toRole);
  }

  async listRoles(tenantId: string): Promise<Role[]> {
    return this.database.all(this.database.ofTenant('roles', tenantId).orderBy('name'), toRole);
  }

  async deleteRole(tenantId: string, name: string): Promise<RoleDeletion> {
    return this.database.write<RoleDeletion>(async (trx) => {
      const exists = await trx
        .selectFrom('roles')
        .select('name')
        .where('tenant_id', '=', tenantId)
        .where('name', '=', name)
        .executeTakeFirst();
      if (!exists) throw new Unchanged('not_found');
      const members = await trx
        .selectFrom('members')
        .select('roles_json')
        .where('tenant_id', '=', tenantId)
        .execute();
      const held =
        members.some((m) => parseNames(m.roles_json).includes(name)) ||
        (await this.#keysHoldingRole(trx, tenantId, name));
      if (held) throw new Unchanged('in_use');
      await trx.deleteFrom('roles').where('tenant_id', '=', tenantId).where('name', '=', name).execute();
      return 'deleted';
    });
  }

  async putMember(tenantId: string, member: Member): Promise<{ created: boolean; member: Member }> {
    return this.database.write(async (trx) => {
      await requireRoles(trx, tenantId, member.roles);
      const fields = {
        email: member.email,
        name: member.name ?? null,
        roles_json: JSON.stringify(member.roles),
        updated_at: toMs(member.updatedAt),
      };
      const existing = await trx
        .selectFrom('members')
        .select('created_at')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', member.id)
        .executeTakeFirst();
      if (existing) {
        await trx
          .updateTable('members')
          .set(fields)
          .where('tenant_id', '=', tenantId)
          .where('id', '=', member.id)
          .execute();
        return { created: false, member: { ...member, tenantId, createdAt: fromMs(existing.created_at) } };
      }
      await trx
        .insertInto('members')
        .values({ ...fields, tenant_id: tenantId, id: member.id, created_at: toMs(member.createdAt) })
        .execute();
      return { created: true, member: { ...member, tenantId } };
    });
  }

  async getMember(tenantId: string, memberId: string): Promise<Member | undefined> {
    return this.database.first(
      this.database.ofTenant('members', tenantId).where('id', '=', memberId),
      toMember,
    );
  }

  async listMembers(tenantId: string, page: { afterId?: string; limit: number }): Promise<Member[]> {
    let query = this.database.ofTenant('members', tenantId);
    if (page.afterId !== undefined) query = query.where('id', '>', page.afterId);
    return this.database.all(query.orderBy('id').limit(page.limit), toMember);
  }

  async deleteMember(tenantId: string, memberId: string): Promise<boolean> {
    return this.database.write(async (trx) => {
      const deleted = await trx
        .deleteFrom('members')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', memberId)
        .executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw new Unchanged(false);
      // Ends the member's sessions at once, and no unused link can start a new one.
      await trx
        .deleteFrom('sessions')
        .where('tenant_id', '=', tenantId)
        .where('member_id', '=', memberId)
        .execute();
      await trx
        .deleteFrom('portal_links')
        .where('tenant_id', '=', tenantId)
        .where('member_id', '=', memberId)
        .execute();
      return true;
    });
  }

  async createPortalLink(link: PortalLinkRecord, purgeBefore: Date): Promise<void> {
    await this.database.append(async (trx) => {
      await trx.deleteFrom('portal_links').where('expires_at', '<', toMs(purgeBefore)).execute();
      await trx
        .insertInto('portal_links')
        .values({
          token_sha256: link.tokenSha256,
          ...subjectColumns(link.subject),
          return_url: link.returnUrl ?? null,
          intent: link.intent ?? null,
          created_at: toMs(link.createdAt),
          expires_at: toMs(link.expiresAt),
          used_at: null,
        })
        .execute();
    });
  }

  async openPortalLink(
    tokenSha256: string,
    now: Date,
    session: Omit<SessionRecord, 'subject'>,
  ): Promise<PortalLinkRecord | undefined> {
    const nowMs = toMs(now);
    return this.database.append(async (trx) => {
      // The update is the single use: of two requests with the same link, one changes the row.
      const used = await trx
        .updateTable('portal_links')
        .set({ used_at: nowMs })
        .where('token_sha256', '=', tokenSha256)
        .where('used_at', 'is', null)
        .where('expires_at', '>', nowMs)
        .executeTakeFirst();
      if (used.numUpdatedRows === 0n) return undefined;
      const row = await trx
        .selectFrom('portal_links')
        .selectAll()
        .where('token_sha256', '=', tokenSha256)
        .executeTakeFirstOrThrow();
      const link = toPortalLink(row);
      if (link.subject.kind === 'member') {
        const member = await trx
          .selectFrom('members')
          .select('id')
          .where('tenant_id', '=', link.subject.tenantId)
          .where('id', '=', link.subject.memberId)
          .executeTakeFirst();
        if (!member) return undefined;
      }
      await trx
        .insertInto('sessions')
        .values(sessionRow({ ...session, subject: link.subject }))
        .execute();
      return link;
    });
  }

  async createSession(session: SessionRecord, purgeBefore: Date): Promise<void> {
    await this.database.append(async (trx) => {
      await trx.deleteFrom('sessions').where('expires_at', '<', toMs(purgeBefore)).execute();
      await trx.insertInto('sessions').values(sessionRow(session)).execute();
    });
  }

  async getSession(idSha256: string): Promise<SessionRecord | undefined> {
    const query = this.database.db.selectFrom('sessions').selectAll().where('id_sha256', '=', idSha256);
    return this.database.first(query, toSession);
  }

  async touchSession(idSha256: string, at: Date): Promise<void> {
    await this.database.append((trx) =>
      trx
        .updateTable('sessions')
        .set({ last_seen_at: toMs(at) })
        .where('id_sha256', '=', idSha256)
        .execute(),
    );
  }

  async deleteSession(idSha256: string): Promise<boolean> {
    return this.database.append(async (trx) => {
      const deleted = await trx.deleteFrom('sessions').where('id_sha256', '=', idSha256).executeTakeFirst();
      return deleted.numDeletedRows > 0n;
    });
  }
}

/** A JSON array of names as stored in `roles_json` / `permissions_json`. */
export function parseNames(json: string): string[] {
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function subjectColumns(subject: SessionSubject): {
  kind: string;
  tenant_id: string | null;
  member_id: string | null;
} {
  return subject.kind === 'member'
    ? { kind: 'member', tenant_id: subject.tenantId, member_id: subject.memberId }
    : { kind: 'operator', tenant_id: null, member_id: null };
}

function subjectOf(row: {
  kind: string;
  tenant_id: string | null;
  member_id: string | null;
}): SessionSubject {
  if (row.kind === 'member' && row.tenant_id !== null && row.member_id !== null) {
    return { kind: 'member', tenantId: row.tenant_id, memberId: row.member_id };
  }
  if (row.kind === 'operator') return { kind: 'operator' };
  throw new AppError('internal_error', 'A stored session names no subject.');
}

function sessionRow(session: SessionRecord): SessionsTable {
  return {
    id_sha256: session.idSha256,
    ...subjectColumns(session.subject),
    created_at: toMs(session.createdAt),
    last_seen_at: toMs(session.lastSeenAt),
    expires_at: toMs(session.expiresAt),
  };
}

function toSession(row: Selectable<SessionsTable>): SessionRecord {
  return {
    idSha256: row.id_sha256,
    subject: subjectOf(row),
    createdAt: fromMs(row.created_at),
    lastSeenAt: fromMs(row.last_seen_at),
    expiresAt: fromMs(row.expires_at),
  };
}

function toPortalLink(row: Selectable<PortalLinksTable>): PortalLinkRecord {
  const link: PortalLinkRecord = {
    tokenSha256: row.token_sha256,
    subject: subjectOf(row),
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
  };
  if (row.return_url !== null) link.returnUrl = row.return_url;
  if (row.intent !== null) link.intent = row.intent;
  if (row.used_at !== null) link.usedAt = fromMs(row.used_at);
  return link;
}

function toRole(row: Selectable<RolesTable>): Role {
  return {
    tenantId: row.tenant_id,
    name: row.name,
    description: row.description,
    permissions: parseNames(row.permissions_json),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}

function toMember(row: Selectable<MembersTable>): Member {
  const member: Member = {
    tenantId: row.tenant_id,
    id: row.id,
    email: row.email,
    roles: parseNames(row.roles_json),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.name !== null) member.name = row.name;
  return member;
}
