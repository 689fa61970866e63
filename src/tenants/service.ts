import { randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors/app-error.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId, sha256Hex } from '../shared/ids.js';
import type { ApiKey, Tenant, TenantStore } from '../store/index.js';

/** Who is calling: the operator (every tenant) or one tenant's API key. */
export type Principal =
  | { kind: 'operator'; actor: 'operator' }
  | { kind: 'tenant'; tenantId: string; actor: string };

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
  readonly #principals = new Map<string, Principal>();
  /**
   * Bumped whenever the caches are cleared: a lookup that was in flight across a clear (it may have
   * read a key just before its revocation) does not put its answer in the cache.
   */
  #generation = 0;

  readonly #changes: ChangeBus | undefined;

  /** `changes` carries a revocation to the other workers (cluster mode) before the answer. */
  constructor(store: TenantStore, clock: Clock, operatorToken?: string, changes?: ChangeBus) {
    this.#store = store;
    this.#clock = clock;
    this.#changes = changes;
    if (operatorToken) this.#operatorTokenSha256 = Buffer.from(sha256Hex(operatorToken), 'hex');
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
    if (known) return known;
    const hash = sha256Hex(token);
    if (this.#operatorTokenSha256 && timingSafeEqual(Buffer.from(hash, 'hex'), this.#operatorTokenSha256)) {
      const operator: Principal = { kind: 'operator', actor: 'operator' };
      this.#principals.set(token, operator);
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
    const principal: Principal = { kind: 'tenant', tenantId: key.tenantId, actor: key.id };
    if (generation === this.#generation) {
      if (this.#principals.size >= 10_000) this.#principals.clear();
      this.#principals.set(token, principal);
    }
    return principal;
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
    const { apiKey, key } = await this.createApiKey(id);
    return { tenant, apiKey, keyId: key.id };
  }

  /** The tenant, or undefined; no authorization (callers use {@link authorize} for requests). */
  getTenant(id: string): Promise<Tenant | undefined> {
    return this.#store.getTenant(id);
  }

  /**
   * Sets the tenant's default identity ("domain level": presented by connections whose switch is on
   * and that name no identity of their own); `null` clears it. Takes effect on the next forward.
   * @throws AppError `not_found` when the tenant does not exist or `identityId` is not a live
   *   identity of it.
   */
  async setDefaultIdentity(tenantId: string, identityId: string | null): Promise<Tenant> {
    const done = await this.#store.setDefaultIdentity(tenantId, identityId ?? undefined);
    if (!done) throw new AppError('not_found', 'No such tenant.');
    await this.#changes?.emit({ tenantId, kind: 'tenant', id: tenantId });
    const tenant = await this.#store.getTenant(tenantId);
    if (!tenant) throw new AppError('not_found', 'No such tenant.');
    return tenant;
  }

  /** Every tenant, oldest first (the operator's list and the expiry scan). */
  listTenants(): Promise<Tenant[]> {
    return this.#store.listTenants();
  }

  /** Creates a key; the plaintext `apiKey` is returned once and never stored. */
  async createApiKey(tenantId: string): Promise<{ apiKey: string; key: ApiKey }> {
    const apiKey = `tw_${randomBytes(32).toString('base64url')}`;
    const key: ApiKey = {
      id: newId('key'),
      tenantId,
      tokenSha256: sha256Hex(apiKey),
      createdAt: this.#clock.now(),
    };
    await this.#store.createApiKey(tenantId, key);
    this.#keyCache.delete(key.tokenSha256);
    return { apiKey, key };
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
