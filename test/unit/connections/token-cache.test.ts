import { describe, expect, it } from 'vitest';
import type { AccessToken, ClientCredentialsSettings } from '../../../src/connections/oauth.js';
import { connectionTokenPrefix, TokenCache, tokenCacheKey } from '../../../src/connections/token-cache.js';
import { AppError } from '../../../src/errors/app-error.js';
import type { Clock } from '../../../src/shared/clock.js';

function movingClock(startMs = Date.UTC(2030, 0, 1)): Clock & { advance(ms: number): void } {
  let now = startMs;
  return { now: () => new Date(now), advance: (ms) => (now += ms) };
}

/** `expiresInS` null: the response had no `expires_in`. */
function token(value: string, expiresInS: number | null = 3600): AccessToken {
  return { accessToken: value, tokenType: 'Bearer', expiresInS: expiresInS ?? undefined, scope: undefined };
}

/** A fetch whose answers the test releases, counting calls. */
function controlledFetch() {
  const pending: { resolve(t: AccessToken): void; reject(e: unknown): void }[] = [];
  let calls = 0;
  const fetch = (): Promise<AccessToken> => {
    calls += 1;
    return new Promise((resolve, reject) => pending.push({ resolve, reject }));
  };
  return { fetch, calls: () => calls, pending };
}

const settings: ClientCredentialsSettings = {
  tokenUrl: 'https://auth.example.com/token',
  clientId: 'client-1',
  clientSecret: 'secret-one',
  clientAuthentication: 'client_secret_basic',
};

describe('TokenCache', () => {
  it('makes one token request for 20 parallel callers and hands all of them its token', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    const control = controlledFetch();
    const waiters = Array.from({ length: 20 }, () => cache.get('k', control.fetch));
    expect(control.calls()).toBe(1);
    expect(cache.inFlightCount).toBe(1);
    control.pending[0]?.resolve(token('tok-1'));
    const tokens = await Promise.all(waiters);
    expect(new Set(tokens.map((t) => t.accessToken))).toEqual(new Set(['tok-1']));
    expect(await cache.get('k', control.fetch)).toMatchObject({ accessToken: 'tok-1' });
    expect(control.calls()).toBe(1);
    expect(cache.inFlightCount).toBe(0);
  });

  it('cached() hands out a stored token synchronously until it is due for renewal, never one in flight', async () => {
    const clock = movingClock();
    const cache = new TokenCache({ clock, skewMs: 30_000 });
    const control = controlledFetch();
    expect(cache.cached('k')).toBeUndefined();
    const waiting = cache.get('k', control.fetch);
    expect(cache.cached('k')).toBeUndefined();
    control.pending[0]?.resolve(token('tok-1', 100));
    await waiting;
    expect(cache.cached('k')?.accessToken).toBe('tok-1');
    clock.advance(70_000);
    expect(cache.cached('k')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('renews at expires_in minus the skew, counted from before the request was sent', async () => {
    const clock = movingClock();
    const cache = new TokenCache({ clock, skewMs: 30_000 });
    let n = 0;
    const fetch = async () => {
      n += 1;
      // The request itself takes 5 s of the token's lifetime.
      clock.advance(5_000);
      return token(`tok-${n}`, 100);
    };
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-1');
    clock.advance(64_999); // 69.999 s after the request started: still inside 100 s - 30 s
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-1');
    clock.advance(1);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-2');
    expect(n).toBe(2);
  });

  it('hands a token whose lifetime is within the skew to its waiters without caching it', async () => {
    const cache = new TokenCache({ clock: movingClock(), skewMs: 30_000 });
    let n = 0;
    const fetch = async () => token(`tok-${++n}`, 30);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-1');
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-2');
    expect(cache.size).toBe(0);
  });

  it('assumes defaultLifetimeS when the endpoint sends no expires_in', async () => {
    const clock = movingClock();
    const cache = new TokenCache({ clock, skewMs: 0, defaultLifetimeS: 60 });
    let n = 0;
    const fetch = async () => token(`tok-${++n}`, null);
    await cache.get('k', fetch);
    clock.advance(59_999);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-1');
    clock.advance(1);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-2');
  });

  it('rejects every waiter of a failed fetch with its error and caches nothing', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    const control = controlledFetch();
    const waiters = Array.from({ length: 5 }, () => cache.get('k', control.fetch));
    const failure = new AppError('oauth_token_failed', 'refused');
    control.pending[0]?.reject(failure);
    const outcomes = await Promise.allSettled(waiters);
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason === failure)).toBe(true);
    expect(cache.size).toBe(0);
    expect(cache.inFlightCount).toBe(0);
    const next = cache.get('k', control.fetch);
    expect(control.calls()).toBe(2);
    control.pending[1]?.resolve(token('tok-2'));
    expect((await next).accessToken).toBe('tok-2');
  });

  it('turns a fetch that throws synchronously into a rejection', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    await expect(
      cache.get('k', () => {
        throw new AppError('oauth_token_failed', 'misconfigured');
      }),
    ).rejects.toMatchObject({ code: 'oauth_token_failed' });
    expect(cache.inFlightCount).toBe(0);
  });

  it('invalidate drops the token the API refused, and only that token', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    let n = 0;
    const fetch = async () => token(`tok-${++n}`);
    await cache.get('k', fetch);
    expect(cache.invalidate('k', 'some-older-token')).toBe(false);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-1');
    expect(cache.invalidate('k', 'tok-1')).toBe(true);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-2');
    // A second 401 for the token already replaced leaves the new one alone.
    expect(cache.invalidate('k', 'tok-1')).toBe(false);
    expect((await cache.get('k', fetch)).accessToken).toBe('tok-2');
  });

  it('keeps at most maxEntries tokens, evicting the least recently used', async () => {
    const cache = new TokenCache({ clock: movingClock(), maxEntries: 2 });
    const fetches: string[] = [];
    const fetchFor = (key: string) => async () => {
      fetches.push(key);
      return token(`tok-${key}`);
    };
    await cache.get('a', fetchFor('a'));
    await cache.get('b', fetchFor('b'));
    await cache.get('a', fetchFor('a')); // a is now the most recently used
    await cache.get('c', fetchFor('c')); // evicts b
    expect(cache.size).toBe(2);
    await cache.get('a', fetchFor('a'));
    await cache.get('b', fetchFor('b'));
    expect(fetches).toEqual(['a', 'b', 'c', 'b']);
  });

  it('forgetPrefix drops a connection’s tokens; a request in flight then serves its waiters but is not cached', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    const prefix = connectionTokenPrefix('t1', 'con_1');
    const cached = `${prefix}no-certificate|x`;
    const other = `${connectionTokenPrefix('t1', 'con_2')}no-certificate|x`;
    await cache.get(cached, async () => token('old'));
    await cache.get(other, async () => token('other'));
    const control = controlledFetch();
    cache.invalidate(cached, 'old');
    const waiting = cache.get(cached, control.fetch);
    cache.forgetPrefix(prefix);
    control.pending[0]?.resolve(token('fetched-before-the-change'));
    expect((await waiting).accessToken).toBe('fetched-before-the-change');
    expect(cache.size).toBe(1);
    const after = cache.get(cached, control.fetch);
    expect(control.calls()).toBe(2);
    control.pending[1]?.resolve(token('new'));
    expect((await after).accessToken).toBe('new');
  });
});

describe('tokenCacheKey', () => {
  const base = { tenantId: 't1', connectionId: 'con_1', identityVersion: 'idn_a@3', settings };

  it('names the connection and identity version, or no-certificate', () => {
    expect(tokenCacheKey(base).startsWith('t1/con_1|idn_a@3|')).toBe(true);
    expect(
      tokenCacheKey({ ...base, identityVersion: undefined }).startsWith('t1/con_1|no-certificate|'),
    ).toBe(true);
    expect(tokenCacheKey({ ...base, identityVersion: 'idn_a@4' })).not.toBe(tokenCacheKey(base));
  });

  it.each([
    ['clientSecret', 'secret-two'],
    ['clientId', 'client-2'],
    ['scope', 'read'],
    ['audience', 'https://api.example.com'],
    ['tokenUrl', 'https://auth.example.com/other'],
    ['clientAuthentication', 'client_secret_post'],
  ])('changes when %s changes, so no token of the old settings is reused', (field, value) => {
    expect(tokenCacheKey({ ...base, settings: { ...settings, [field]: value } })).not.toBe(
      tokenCacheKey(base),
    );
  });

  it('is stable for the same settings and never holds the secret', () => {
    expect(tokenCacheKey({ ...base, settings: { ...settings } })).toBe(tokenCacheKey(base));
    expect(tokenCacheKey(base)).not.toContain('secret-one');
  });
});
