/**
 * Access tokens of OAuth 2.0 client-credentials connections, cached until their `expires_in`
 * (RFC 6749 §5.1) less a skew, with one token request in flight per key however many forwards wait.
 *
 * A key names the connection, the identity version that fetched the token (a certificate-bound token,
 * RFC 8705 §3, works only with the certificate it was bound to, so a rotation must fetch a new one) and
 * a keyed hash of the OAuth settings (a changed secret, client id, scope, audience or token URL never
 * reuses a token obtained with the old ones).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { type Clock, systemClock } from '../shared/clock.js';
import type { AccessToken, ClientCredentialsSettings } from './oauth.js';

/** What a token cache key is made of. */
export interface TokenCacheKeyParts {
  tenantId: string;
  connectionId: string;
  /**
   * The identity version presenting the client certificate, e.g. `${identityId}@${version}`, or
   * undefined when the connection presents none (the key then says `no-certificate`).
   */
  identityVersion: string | undefined;
  settings: ClientCredentialsSettings;
}

// Per process: the settings hash includes the client secret, so an unkeyed hash in a key that ends up
// in a log or heap dump could be brute-forced for a weak secret.
const settingsHashKey = randomBytes(32);

/** The key prefix of every token of one connection, for {@link TokenCache.forgetPrefix}. */
export function connectionTokenPrefix(tenantId: string, connectionId: string): string {
  return `${tenantId}/${connectionId}|`;
}

/**
 * `${tenantId}/${connectionId}|${identityVersion or "no-certificate"}|${hmac}` where `hmac` is an
 * HMAC-SHA-256 (per-process random key, first 32 hex digits) over every field of `settings`.
 */
export function tokenCacheKey(parts: TokenCacheKeyParts): string {
  const { settings } = parts;
  const hash = createHmac('sha256', settingsHashKey)
    .update(
      JSON.stringify([
        settings.tokenUrl,
        settings.clientId,
        settings.clientSecret ?? null,
        settings.scope ?? null,
        settings.audience ?? null,
        settings.clientAuthentication,
      ]),
    )
    .digest('hex')
    .slice(0, 32);
  return `${connectionTokenPrefix(parts.tenantId, parts.connectionId)}${parts.identityVersion ?? 'no-certificate'}|${hash}`;
}

/** Default skew: a token is renewed 30 s before its `expires_in` runs out. */
export const DEFAULT_TOKEN_SKEW_MS = 30_000;
/** Default lifetime assumed when the endpoint sends no `expires_in`: 5 minutes. */
export const DEFAULT_TOKEN_LIFETIME_S = 300;
/** Default number of cached tokens; the least recently used goes first beyond it. */
export const DEFAULT_MAX_CACHED_TOKENS = 10_000;

interface Entry {
  token: AccessToken;
  /** Epoch ms after which the token is no longer handed out. */
  renewAt: number;
}

/**
 * Tokens by {@link tokenCacheKey}.
 *
 * - `get(key, fetch)` returns the cached token while `now < obtainedAt + expires_in - skewMs`, where
 *   `obtainedAt` is the clock reading before the request was sent (so the skew also covers the request's
 *   own duration). Otherwise it calls `fetch` once; every caller for the key meanwhile waits for that one
 *   request. A token whose lifetime does not exceed the skew is handed to its waiters but not cached.
 * - A failed fetch rejects all its waiters with the same error and caches nothing; the next `get` tries
 *   again.
 * - `invalidate(key, accessToken)` after the API answered `401`: drops the cached token only if it is
 *   still that token, so a token another forward already renewed is kept.
 * - At most `maxEntries` tokens (least recently used evicted).
 */
export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #inFlight = new Map<string, Promise<AccessToken>>();
  readonly #clock: Clock;
  readonly #skewMs: number;
  readonly #defaultLifetimeS: number;
  readonly #maxEntries: number;

  /**
   * @param options.clock default the system clock.
   * @param options.skewMs renew this long before expiry, ms; default {@link DEFAULT_TOKEN_SKEW_MS}; negative counts as 0.
   * @param options.defaultLifetimeS assumed `expires_in` when absent (RFC 6749 §5.1 leaves it to the server's documentation); default {@link DEFAULT_TOKEN_LIFETIME_S}.
   * @param options.maxEntries default {@link DEFAULT_MAX_CACHED_TOKENS}; at least 1.
   */
  constructor(
    options: { clock?: Clock; skewMs?: number; defaultLifetimeS?: number; maxEntries?: number } = {},
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#skewMs = Math.max(0, options.skewMs ?? DEFAULT_TOKEN_SKEW_MS);
    this.#defaultLifetimeS = options.defaultLifetimeS ?? DEFAULT_TOKEN_LIFETIME_S;
    this.#maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_CACHED_TOKENS);
  }

  /**
   * The token for `key`: cached, the one being fetched, or a new one from `fetch` (typically
   * `() => requestClientCredentialsToken(settings, options)`).
   * @throws whatever `fetch` rejects with (`oauth_token_failed`), to every caller waiting for it.
   */
  get(key: string, fetch: () => Promise<AccessToken>): Promise<AccessToken> {
    const cached = this.cached(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const pending = this.#inFlight.get(key);
    if (pending !== undefined) return pending;
    const obtainedAt = this.#clock.now().getTime();
    const fetching = (async () => fetch())();
    const settled = fetching.then(
      (token) => {
        // Only the request still registered stores its token: a forget() in between wins.
        if (this.#inFlight.get(key) === settled) {
          this.#inFlight.delete(key);
          this.#store(key, token, obtainedAt);
        }
        return token;
      },
      (err: unknown) => {
        if (this.#inFlight.get(key) === settled) this.#inFlight.delete(key);
        throw err;
      },
    );
    this.#inFlight.set(key, settled);
    return settled;
  }

  /**
   * The cached token of `key` while it is still handed out (see {@link get}), synchronously, for
   * callers that can skip a promise on the hot path; undefined when none is (expired ones are dropped).
   */
  cached(key: string): AccessToken | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (this.#clock.now().getTime() >= entry.renewAt) return undefined;
    // Most recently used goes last: Map iteration order is insertion order.
    this.#entries.set(key, entry);
    return entry.token;
  }

  /**
   * Drops the cached token of `key` if it is `accessToken` (the API answered 401 to it, RFC 6750 §3.1).
   * @returns true when a token was dropped.
   */
  invalidate(key: string, accessToken: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined || entry.token.accessToken !== accessToken) return false;
    this.#entries.delete(key);
    return true;
  }

  /**
   * Drops every token, and forgets every request in flight, whose key starts with `prefix` (e.g.
   * {@link connectionTokenPrefix} when a connection is updated or deleted). Callers already waiting
   * still get their token; it is not cached.
   */
  forgetPrefix(prefix: string): void {
    for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) this.#entries.delete(key);
    for (const key of [...this.#inFlight.keys()]) if (key.startsWith(prefix)) this.#inFlight.delete(key);
  }

  /** Number of cached tokens (requests in flight not counted). */
  get size(): number {
    return this.#entries.size;
  }

  /** Number of token requests in flight. */
  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  #store(key: string, token: AccessToken, obtainedAt: number): void {
    const lifetimeMs = (token.expiresInS ?? this.#defaultLifetimeS) * 1000;
    const renewAt = obtainedAt + lifetimeMs - this.#skewMs;
    if (renewAt <= this.#clock.now().getTime()) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { token, renewAt });
  }
}
