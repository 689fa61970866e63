/**
 * Store types of people (roles, members, sessions, portal links); re-exported by types.ts
 * (callers import store/index.ts).
 */

// ---- people (issue 13): roles, members, sessions, portal links --------------------------------------

/** A tenant's custom role (the built-in `admin` and `viewer` are not stored). */
export interface Role {
  tenantId: string;
  name: string;
  description: string;
  /** Permission names of the catalogue (people/permissions.ts). */
  permissions: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** A person of a tenant; `id` is the platform's own user id. */
export interface Member {
  tenantId: string;
  id: string;
  email: string;
  name?: string;
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** Who a session or a portal link signs in: a member of a tenant, or the operator (console). */
export type SessionSubject = { kind: 'member'; tenantId: string; memberId: string } | { kind: 'operator' };

/** A browser session, found by the SHA-256 of its cookie value. */
export interface SessionRecord {
  idSha256: string;
  subject: SessionSubject;
  createdAt: Date;
  lastSeenAt: Date;
  /** Absolute end, whatever the activity. */
  expiresAt: Date;
}

/** A single-use sign-in link, found by the SHA-256 of its token. */
export interface PortalLinkRecord {
  tokenSha256: string;
  subject: SessionSubject;
  /** A same-origin path under `/ui/`, checked when the link was made. */
  returnUrl?: string;
  intent?: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt?: Date;
}

/** Why {@link PeopleStore.deleteRole} did not delete: no such role, or members or keys hold it. */
export type RoleDeletion = 'deleted' | 'not_found' | 'in_use';

/**
 * Roles and members (configuration: writes bump the revision), sessions and portal links
 * (bookkeeping: they do not). Custom role names a member or key holds must exist, checked in the
 * write transaction; a role still held cannot be deleted.
 */
export interface PeopleStore {
  /** Inserts or replaces a custom role; true when it is new. */
  putRole(tenantId: string, role: Role): Promise<boolean>;
  getRole(tenantId: string, name: string): Promise<Role | undefined>;
  /** Ordered by name. */
  listRoles(tenantId: string): Promise<Role[]>;
  /** Deletes a custom role unless a member or an unrevoked API key holds it (same transaction). */
  deleteRole(tenantId: string, name: string): Promise<RoleDeletion>;
  /**
   * Inserts or replaces a member (keeping its `createdAt`); true when it is new.
   * @throws AppError `unknown_role` for a role that is neither built-in nor the tenant's own
   */
  putMember(tenantId: string, member: Member): Promise<{ created: boolean; member: Member }>;
  getMember(tenantId: string, memberId: string): Promise<Member | undefined>;
  /** Ordered by id, after `afterId` when given, at most `limit`. */
  listMembers(tenantId: string, page: { afterId?: string; limit: number }): Promise<Member[]>;
  /** Deletes the member with its sessions and unused portal links; false when there was none. */
  deleteMember(tenantId: string, memberId: string): Promise<boolean>;
  /** Stores a new link and drops links that expired before `purgeBefore`. */
  createPortalLink(link: PortalLinkRecord, purgeBefore: Date): Promise<void>;
  /**
   * Uses the link once, in one transaction: unused, not expired at `now`, its member still there;
   * then stores `session` for the link's subject. The link, or undefined when it cannot be used.
   */
  openPortalLink(
    tokenSha256: string,
    now: Date,
    session: Omit<SessionRecord, 'subject'>,
  ): Promise<PortalLinkRecord | undefined>;
  /** Stores a session and drops the ones past their absolute end before `purgeBefore`. */
  createSession(session: SessionRecord, purgeBefore: Date): Promise<void>;
  getSession(idSha256: string): Promise<SessionRecord | undefined>;
  touchSession(idSha256: string, at: Date): Promise<void>;
  /** False when there was no such session. */
  deleteSession(idSha256: string): Promise<boolean>;
}
