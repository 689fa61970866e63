import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../errors/app-error.js';
import { BUILT_IN_ROLES, type Permission, permissionsOf } from '../people/permissions.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId, sha256Hex } from '../shared/ids.js';
import { everyItem } from '../shared/paging.js';
import type { ApiKey, Page, PageRequest, Tenant, TenantStore } from '../store/index.js';

/**
 * Who is calling: the operator (every tenant, every permission: the operator token or a console
 * session) or one tenant's API key or member session, with the permissions its roles grant now.
 */
export type Principal =
  | { kind: 'operator'; actor: 'operator' }
  | {
      kind: 'tenant';
      tenantId: string;
      /** `api-key:<id>` or `member:<id>`, as the audit log names it. */
      actor: string;
      permissions: ReadonlySet<Permission>;
      /** A member's e-mail address (recorded with the member's audit entries). */
      email?: string;
    };

/**
 * Throws `forbidden` when a key or member lacks `permission` (the operator holds every one). Tenant
 * routes declare theirs instead (http/tenant-scope.ts); this is for the runtime API.
 * @throws AppError `forbidden`
 */
export function requirePermission(principal: Principal, permission: Permission): void {
  if (principal.kind === 'tenant' && !principal.permissions.has(permission)) {
    throw new AppError('forbidden', `This needs the permission ${permission}.`);
  }
}

/** The permissions a tenant's role names grant (people/service.ts `rolePermissions`). */
export type RolePermissions = (tenantId: string, roles: readonly string[]) => Promise<Set<Permission>>;

/** What {@link TenantService.createApiKey} takes; `roles` defaults to `["admin"]`, as before roles existed. */
export interface NewApiKey {
  name?: string;
  roles?: readonly string[];
}

/** How often a key's `lastUsedAt` is written, at most (ms): a forward must not cost a write. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** The token of an `Authorization: Bearer <token>` value (RFC 6750 §2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

/** `^[a-z0-9][a-z0-9-]{1,62}$`, as API.md fixes it. */
export const TENANT_ID_PATTERN = '^[a-z0-9][a-z0-9-]{1,62}$';

/**
 * Tenants, their API keys and bearer-token authentication. API keys are `tw_` + 32 random bytes
 * (base64url); only their SHA-256 is stored (a fast hash is enough for 256-bit random secrets).
 * Lookups are cached in memory; revocation in this process clears the cache at once, and
 * {@link TenantService.forgetCachedKeys} is called when another process changed the store.
 */
export class TenantService {
  readonly #store: TenantStore;
  readonly #clock: Clock;
  readonly #operatorTokenSha256?: Buffer;
  readonly #keyCache = new Map<string, ApiKey | null>();
  /** Known tokens: the principal, and the key id of an API key (for `lastUsedAt`). */
  readonly #principals = new Map<string, { principal: Principal; key?: { tenantId: string; id: string } }>();
  /**
   * Bumped whenever the caches are cleared: a lookup that was in flight across a clear (it may have
   * read a key just before its revocation) does not put its answer in the cache.
   */
  #generation = 0;

  readonly #changes: ChangeBus | undefined;
  readonly #rolePermissions: RolePermissions;
  /** When each key's `lastUsedAt` was last written by this process (ms). */
  readonly #lastUsedWritten = new Map<string, number>();
  #logger: Logger | undefined;

  /**
   * `changes` carries a revocation to the other workers (cluster mode) before the answer; a `role`
   * or `api_key` change on it drops the cached principals, so a key's permissions follow its roles
   * at once. `rolePermissions` resolves a key's roles (default: the built-in roles only).
   */
  constructor(
    store: TenantStore,
    clock: Clock,
    operatorToken?: string,
    changes?: ChangeBus,
    rolePermissions?: RolePermissions,
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#changes = changes;
    this.#rolePermissions = rolePermissions ?? (async (_tenantId, roles) => permissionsOf(roles, new Map()));
    if (operatorToken) this.#operatorTokenSha256 = Buffer.from(sha256Hex(operatorToken), 'hex');
    changes?.on(
      (change) => {
        if (change.kind === 'role' || change.kind === 'api_key') this.forgetCachedKeys();
      },
      () => {},
    );
  }

  /** Where a failed `lastUsedAt` write is reported (set by main.ts). */
  set logger(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * True when `token` is the operator token, compared in constant time (over SHA-256 digests, so
   * the length of the token does not show either). Always false when no operator token is set.
   */
  isOperatorToken(token: string): boolean {
    if (!this.#operatorTokenSha256) return false;
    return timingSafeEqual(Buffer.from(sha256Hex(token), 'hex'), this.#operatorTokenSha256);
  }

  /**
   * Resolves a bearer token to a principal.
   * @throws AppError `unauthorized` for a missing, unknown or revoked token.
   */
  async authenticate(token: string | undefined): Promise<Principal> {
    if (!token) throw new AppError('unauthorized', 'Send Authorization: Bearer <token>.');
    // Every forward authenticates: answer known tokens without hashing again (cleared on any
    // revocation or store change, so a revoked key stops working at once).
    const known = this.#principals.get(token);
    if (known) {
      if (known.key !== undefined) this.#noteUse(known.key.tenantId, known.key.id);
      return known.principal;
    }
    const hash = sha256Hex(token);
    if (this.isOperatorToken(token)) {
      const operator: Principal = { kind: 'operator', actor: 'operator' };
      this.#principals.set(token, { principal: operator });
      return operator;
    }
    const generation = this.#generation;
    let key = this.#keyCache.get(hash);
    if (key === undefined) {
      key = (await this.#store.findApiKeyByHash(hash)) ?? null;
      if (generation === this.#generation) {
        if (this.#keyCache.size > 100_000) this.#keyCache.clear();
        this.#keyCache.set(hash, key);
      }
    }
    if (!key || key.revokedAt) throw new AppError('unauthorized', 'The token is not valid.');
    const principal: Principal = {
      kind: 'tenant',
      tenantId: key.tenantId,
      actor: `api-key:${key.id}`,
      permissions: await this.#rolePermissions(key.tenantId, key.roles),
    };
    if (generation === this.#generation) {
      if (this.#principals.size >= 10_000) this.#principals.clear();
      this.#principals.set(token, { principal, key: { tenantId: key.tenantId, id: key.id } });
    }
    this.#noteUse(key.tenantId, key.id);
    return principal;
  }

  /** Writes a key's `lastUsedAt` when the last write is a minute old; never delays the request. */
  #noteUse(tenantId: string, keyId: string): void {
    const nowMs = this.#clock.now().getTime();
    const last = this.#lastUsedWritten.get(keyId);
    if (last !== undefined && nowMs - last < LAST_USED_RESOLUTION_MS) return;
    if (this.#lastUsedWritten.size >= 100_000) this.#lastUsedWritten.clear();
    this.#lastUsedWritten.set(keyId, nowMs);
    this.#store.touchApiKey(tenantId, keyId, new Date(nowMs)).catch((err: unknown) => {
      this.#logger?.warn({ err, keyId }, 'API key last use not recorded');
    });
  }

  /**
   * Checks that `principal` may act on `tenantId`. Another tenant's id gives `not_found`, exactly as
   * a tenant that does not exist, so a key cannot probe which tenants exist.
   * @throws AppError `not_found`
   */
  async authorize(principal: Principal, tenantId: string): Promise<Tenant> {
    if (principal.kind === 'tenant' && principal.tenantId !== tenantId) {
      throw new AppError('not_found', 'No such tenant.');
    }
    const tenant = await this.#store.getTenant(tenantId);
    if (!tenant) throw new AppError('not_found', 'No such tenant.');
    return tenant;
  }

  /** @throws AppError `tenant_exists` */
  async createTenant(id: string, name: string): Promise<{ tenant: Tenant; apiKey: string; keyId: string }> {
    const tenant: Tenant = { id, name, createdAt: this.#clock.now() };
    await this.#store.createTenant(tenant);
    const { apiKey, key } = await this.createApiKey(id, { name: 'initial' });
    return { tenant, apiKey, keyId: key.id };
  }

  /** The tenant, or undefined; no authorization (callers use {@link authorize} for requests). */
  getTenant(id: string): Promise<Tenant | undefined> {
    return this.#store.getTenant(id);
  }

  /** One page of the tenants, oldest first (the operator's list). @throws AppError `invalid_cursor` */
  pageTenants(request: PageRequest): Promise<Page<Tenant>> {
    return this.#store.listTenants(request);
  }

  /** Every tenant, oldest first, read page by page (the expiry scan). */
  listTenants(): Promise<Tenant[]> {
    return everyItem((request) => this.#store.listTenants(request));
  }

  /**
   * Creates a key with `roles` (default `["admin"]`) named `name` (default `API key`); the plaintext
   * `apiKey` is returned once and never stored. Whether the caller may grant those roles is the
   * caller's check (people/service.ts).
   * @throws AppError `unknown_role`, `not_found` (no such tenant)
   */
  async createApiKey(tenantId: string, options: NewApiKey = {}): Promise<{ apiKey: string; key: ApiKey }> {
    const apiKey = `tw_${randomBytes(32).toString('base64url')}`;
    const key: ApiKey = {
      id: newId('key'),
      tenantId,
      name: options.name ?? 'API key',
      roles: [...new Set(options.roles ?? [BUILT_IN_ROLES.admin.name])],
      tokenSha256: sha256Hex(apiKey),
      createdAt: this.#clock.now(),
    };
    await this.#store.createApiKey(tenantId, key);
    this.#keyCache.delete(key.tokenSha256);
    return { apiKey, key };
  }

  /** The tenant's unrevoked key `keyId`, or undefined. */
  getApiKey(tenantId: string, keyId: string): Promise<ApiKey | undefined> {
    return this.#store.getApiKey(tenantId, keyId);
  }

  /** The tenant's unrevoked keys (never their secrets), ordered by id, after `afterId`. */
  listApiKeys(tenantId: string, page: { afterId?: string; limit: number }): Promise<ApiKey[]> {
    return this.#store.listApiKeys(tenantId, page);
  }

  /** @throws AppError `not_found` */
  async revokeApiKey(tenantId: string, keyId: string): Promise<void> {
    const done = await this.#store.revokeApiKey(tenantId, keyId, this.#clock.now());
    if (!done) throw new AppError('not_found', 'No such API key.');
    this.forgetCachedKeys();
    await this.#changes?.emit({ tenantId, kind: 'api_key', id: keyId });
  }

  /** Drops cached key lookups (another process may have revoked a key). */
  forgetCachedKeys(): void {
    this.#generation += 1;
    this.#keyCache.clear();
    this.#principals.clear();
  }
}
