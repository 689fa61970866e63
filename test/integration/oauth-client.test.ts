/**
 * The OAuth 2.0 client-credentials client and its token cache against a real token endpoint and a real
 * resource server on loopback (test/helpers/oauth-server.ts), over Agents from the forward path's
 * DispatcherCache, as connections will use them.
 */
import { createSecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type AccessToken,
  type ClientCredentialsSettings,
  OAuthTokenError,
  requestClientCredentialsToken,
  type TokenRequestOptions,
} from '../../src/connections/oauth.js';
import { TokenCache, tokenCacheKey } from '../../src/connections/token-cache.js';
import { DispatcherCache, type DispatcherLease } from '../../src/forward/dispatchers.js';
import type { Clock } from '../../src/shared/clock.js';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';
import {
  type OAuthServer,
  type RawAnswer,
  type ResourceAnswer,
  type ResourceServer,
  startOAuthServer,
  startResourceServer,
  x5tS256,
} from '../helpers/oauth-server.js';

const BASIC_SECRET = 'basic:S3cret with space+ü/0123456789';
const POST_SECRET = 'post-S3cret-0123456789abcdef';
const WRONG_SECRET = 'wrong-S3cret-0123456789abcdef';
const timeouts = {
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  bodyTimeoutMs: 5_000,
  idleTimeoutMs: 10_000,
};

let pki: TestPki;
let clientA: CertKey;
let clientB: CertKey;
let oauth: OAuthServer;
let api: ResourceServer;
let dispatchers: DispatcherCache;
/** Leases over Agents built as the forward path builds them: client A's, client B's, none. */
let withA: DispatcherLease;
let withB: DispatcherLease;
let noCertificate: DispatcherLease;

function lease(key: string, client?: CertKey): DispatcherLease {
  const secureContext = createSecureContext({
    ca: oauth.trustAnchorsPem,
    ...(client ? { key: client.keyPem, cert: client.certPem + pki.intermediate.certPem } : {}),
  });
  return dispatchers.lease({ key, secureContext });
}

function via(dispatcher: DispatcherLease, extra: Partial<TokenRequestOptions> = {}): TokenRequestOptions {
  return { dispatcher: dispatcher.dispatcher, timeoutMs: 5_000, allowPrivate: true, ...extra };
}

const basic = (): ClientCredentialsSettings => ({
  tokenUrl: oauth.url,
  clientId: 'basic-client',
  clientSecret: BASIC_SECRET,
  scope: 'read write',
  clientAuthentication: 'client_secret_basic',
});
const post = (): ClientCredentialsSettings => ({
  tokenUrl: oauth.url,
  clientId: 'post-client',
  clientSecret: POST_SECRET,
  audience: 'https://api.example.com',
  clientAuthentication: 'client_secret_post',
});
const mtls = (): ClientCredentialsSettings => ({
  tokenUrl: oauth.mtlsUrl,
  clientId: 'mtls-client',
  // Set to show it is never sent: tls_client_auth sends only client_id (RFC 8705 §2.1).
  clientSecret: POST_SECRET,
  clientAuthentication: 'tls_client_auth',
});

/** The failure of `promise`, which must be an OAuthTokenError. */
async function failure(promise: Promise<unknown>): Promise<OAuthTokenError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OAuthTokenError);
  const oauthError = err as OAuthTokenError;
  expect(oauthError.code).toBe('oauth_token_failed');
  expect(oauthError.status).toBe(502);
  return oauthError;
}

/** Makes the endpoint answer `answer` and returns the failure of a client_secret_post request. */
function failureFor(answer: RawAnswer): Promise<OAuthTokenError> {
  oauth.answer = answer;
  return failure(requestClientCredentialsToken(post(), via(noCertificate)));
}

/** A 200 JSON answer. */
const ok = (body: object): RawAnswer => ({ status: 200, body: JSON.stringify(body) });

/** Nothing of `secrets` in the error's message, detail, or anything inspect shows of it (cause included). */
function expectNoSecrets(err: Error, secrets: string[]): void {
  const shown = [
    err.message,
    (err as OAuthTokenError).detail,
    inspect(err, { depth: 6 }),
    JSON.stringify(err),
  ];
  for (const secret of secrets) for (const text of shown) expect(text).not.toContain(secret);
}

async function callApi(
  dispatcher: DispatcherLease,
  token: AccessToken,
): Promise<{ status: number; body: unknown }> {
  const response = await request(`${api.url}/v1/things`, {
    dispatcher: dispatcher.dispatcher,
    headers: { authorization: `Bearer ${token.accessToken}` },
  });
  return { status: response.statusCode, body: await response.body.json() };
}

beforeAll(async () => {
  pki = await makePki('OAuth Test');
  [clientA, clientB] = await Promise.all([pki.leaf({ cn: 'client-a' }), pki.leaf({ cn: 'client-b' })]);
  oauth = await startOAuthServer(pki, [
    { clientId: 'basic-client', method: 'client_secret_basic', clientSecret: BASIC_SECRET },
    { clientId: 'post-client', method: 'client_secret_post', clientSecret: POST_SECRET },
    { clientId: 'mtls-client', method: 'tls_client_auth', certificate: clientA },
  ]);
  api = await startResourceServer(pki, oauth);
  dispatchers = new DispatcherCache({ timeouts, allowPrivate: true, idleAgentTtlMs: 0 });
  withA = lease('t1/idn_a@1#oauth-test', clientA);
  withB = lease('t1/idn_b@1#oauth-test', clientB);
  noCertificate = lease('t1/no-certificate#oauth-test');
});

afterAll(async () => {
  for (const leased of [withA, withB, noCertificate]) leased?.release();
  await dispatchers?.close();
  await Promise.all([oauth?.close(), api?.close()]);
});

beforeEach(() => {
  oauth.requests.length = 0;
  oauth.expiresInS = 3600;
  oauth.failWith = null;
  oauth.answer = null;
  oauth.stall = false;
});

describe('client authentication at a real token endpoint', () => {
  it('client_secret_basic: the form-urlencoded id and secret in Basic, nothing in the body', async () => {
    const token = await requestClientCredentialsToken(basic(), via(noCertificate));
    expect(token).toMatchObject({ tokenType: 'Bearer', expiresInS: 3600, scope: 'read write' });
    const [received] = oauth.requests;
    expect(received?.form).toEqual({ grant_type: 'client_credentials', scope: 'read write' });
    expect(Buffer.from(received?.authorization?.slice(6) ?? '', 'base64').toString()).toBe(
      'basic-client:basic%3AS3cret+with+space%2B%C3%BC%2F0123456789',
    );
    expect(oauth.issued.get(token.accessToken)).toMatchObject({ clientId: 'basic-client', cnf: undefined });
  });

  it('client_secret_basic with the wrong secret: oauth_token_failed carrying invalid_client, never the secret', async () => {
    const err = await failure(
      requestClientCredentialsToken({ ...basic(), clientSecret: WRONG_SECRET }, via(noCertificate)),
    );
    expect(err).toMatchObject({
      reason: 'endpoint_error',
      endpointError: 'invalid_client',
      endpointStatus: 401,
    });
    expect(err.detail).toContain('invalid_client');
    expectNoSecrets(err, [WRONG_SECRET, BASIC_SECRET]);
  });

  it('client_secret_post: id and secret in the body, no Authorization header', async () => {
    const token = await requestClientCredentialsToken(post(), via(noCertificate));
    const [received] = oauth.requests;
    expect(received?.authorization).toBeUndefined();
    expect(received?.form).toEqual({
      grant_type: 'client_credentials',
      audience: 'https://api.example.com',
      client_id: 'post-client',
      client_secret: POST_SECRET,
    });
    expect(oauth.issued.get(token.accessToken)).toMatchObject({
      clientId: 'post-client',
      audience: 'https://api.example.com',
    });
  });

  it('client_secret_post with the wrong secret is refused without the secret in the error', async () => {
    const err = await failure(
      requestClientCredentialsToken({ ...post(), clientSecret: WRONG_SECRET }, via(noCertificate)),
    );
    expect(err).toMatchObject({ reason: 'endpoint_error', endpointError: 'invalid_client' });
    expectNoSecrets(err, [WRONG_SECRET]);
  });

  it('tls_client_auth over the identity version’s mTLS Agent sends only client_id and gets a certificate-bound token', async () => {
    const token = await requestClientCredentialsToken(mtls(), via(withA));
    const [received] = oauth.requests;
    expect(received).toMatchObject({
      listener: 'mtls',
      authorization: undefined,
      form: { grant_type: 'client_credentials', client_id: 'mtls-client' },
      clientFingerprint: clientA.fingerprintSha256,
    });
    expect(Object.keys(received?.form ?? {}).sort()).toEqual(['client_id', 'grant_type']);
    const der = Buffer.from(clientA.cert.rawData);
    expect(oauth.issued.get(token.accessToken)?.cnf).toEqual({ 'x5t#S256': x5tS256(der) });
  });

  it('tls_client_auth with another certificate of the same CA is refused as invalid_client', async () => {
    const err = await failure(requestClientCredentialsToken(mtls(), via(withB)));
    expect(err).toMatchObject({ reason: 'endpoint_error', endpointError: 'invalid_client' });
    expect(oauth.requests[0]?.clientFingerprint).toBe(clientB.fingerprintSha256);
  });

  it('tls_client_auth without a certificate is refused: by the endpoint, or at the handshake of the mTLS listener', async () => {
    const atEndpoint = await failure(
      requestClientCredentialsToken({ ...mtls(), tokenUrl: oauth.url }, via(noCertificate)),
    );
    expect(atEndpoint).toMatchObject({ reason: 'endpoint_error', endpointError: 'invalid_client' });
    const atHandshake = await failure(requestClientCredentialsToken(mtls(), via(noCertificate)));
    expect(atHandshake).toMatchObject({ reason: 'unreachable', upstreamCode: 'upstream_tls_failed' });
    expectNoSecrets(atHandshake, [POST_SECRET]);
  });
});

describe('certificate-bound tokens at the resource server (RFC 8705 §3)', () => {
  it('accepts the bound token with the certificate it was issued over and refuses it with another', async () => {
    const token = await requestClientCredentialsToken(mtls(), via(withA));
    expect(await callApi(withA, token)).toEqual({
      status: 200,
      body: { clientId: 'mtls-client', bound: true } satisfies ResourceAnswer,
    });
    expect((await callApi(withB, token)).status).toBe(401);
  });

  it('binds a secret-authenticated token fetched over mTLS too, and leaves one fetched without a certificate unbound', async () => {
    const bound = await requestClientCredentialsToken({ ...basic(), tokenUrl: oauth.mtlsUrl }, via(withA));
    expect(await callApi(withA, bound)).toMatchObject({ status: 200, body: { bound: true } });
    expect((await callApi(withB, bound)).status).toBe(401);
    const unbound = await requestClientCredentialsToken(basic(), via(noCertificate));
    expect(await callApi(withB, unbound)).toMatchObject({ status: 200, body: { bound: false } });
  });
});

describe('the token cache against the real endpoint', () => {
  function movingClock(): Clock & { advance(ms: number): void } {
    let now = Date.UTC(2030, 0, 1);
    return { now: () => new Date(now), advance: (ms) => (now += ms) };
  }
  let key = '';
  beforeAll(() => {
    key = tokenCacheKey({
      tenantId: 't1',
      connectionId: 'con_1',
      identityVersion: 'idn_a@1',
      settings: mtls(),
    });
  });
  const fetchA = () => requestClientCredentialsToken(mtls(), via(withA));

  it('20 parallel callers cause exactly one token request and all get the same token', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    const tokens = await Promise.all(Array.from({ length: 20 }, () => cache.get(key, fetchA)));
    expect(oauth.requests).toHaveLength(1);
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
  });

  it('fetches a new token once expires_in minus the skew has passed', async () => {
    const clock = movingClock();
    const cache = new TokenCache({ clock, skewMs: 30_000 });
    oauth.expiresInS = 120;
    const first = await cache.get(key, fetchA);
    clock.advance(89_000);
    expect((await cache.get(key, fetchA)).accessToken).toBe(first.accessToken);
    expect(oauth.requests).toHaveLength(1);
    clock.advance(1_000);
    const second = await cache.get(key, fetchA);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect(oauth.requests).toHaveLength(2);
  });

  it('a 401 from the API drops the cached token and the next call gets one the API accepts', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    const first = await cache.get(key, fetchA);
    const issued = oauth.issued.get(first.accessToken);
    if (issued) issued.revoked = true;
    expect((await callApi(withA, first)).status).toBe(401);
    expect(cache.invalidate(key, first.accessToken)).toBe(true);
    const second = await cache.get(key, fetchA);
    expect(second.accessToken).not.toBe(first.accessToken);
    expect((await callApi(withA, second)).status).toBe(200);
    expect(oauth.requests).toHaveLength(2);
  });

  it('a failed token request rejects every waiter, caches nothing, and the next call asks again', async () => {
    const cache = new TokenCache({ clock: movingClock() });
    oauth.failWith = { error: 'invalid_client', error_description: 'Client is disabled.' };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => cache.get(key, fetchA)));
    expect(oauth.requests).toHaveLength(1);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({
        code: 'oauth_token_failed',
        endpointError: 'invalid_client',
      });
    }
    expect(cache.size).toBe(0);
    oauth.failWith = null;
    await cache.get(key, fetchA);
    expect(oauth.requests).toHaveLength(2);
  });
});

describe('bad answers from the token endpoint', () => {
  it('an error_description echoing the secret and control characters is redacted, sanitised and bounded', async () => {
    oauth.failWith = {
      error: 'invalid_client',
      error_description: `secret ${POST_SECRET} is wrong\r\nSet-Cookie: x=1 \u00e9${'x'.repeat(2000)}`,
    };
    const err = await failure(requestClientCredentialsToken(post(), via(noCertificate)));
    expectNoSecrets(err, [POST_SECRET, 'x'.repeat(250)]);
    expect(err.detail).toMatch(/^[\x20-\x7e]+$/);
    expect(err.detail).toContain('invalid_client: secret [redacted] is wrong??Set-Cookie: x=1 ?x');
    expect(err.detail.length).toBeLessThan(320);
  });

  it('refuses a garbage 200 answer without quoting it', async () => {
    // Short enough that a JSON SyntaxError message would quote all of it.
    const err = await failureFor({ status: 200, body: 'tok=NotJsonToken123', contentType: 'text/plain' });
    expect(err.reason).toBe('invalid_response');
    expectNoSecrets(err, ['NotJsonToken123', POST_SECRET]);
  });

  it('refuses a JSON answer without a usable access_token', async () => {
    const err = await failureFor(ok({ access_token: 'bad token\r\nX: 1', token_type: 'Bearer' }));
    expect(err.reason).toBe('invalid_response');
  });

  it.each([false, true])('refuses an oversized answer (chunked: %s)', async (chunked) => {
    const body = { access_token: 'SizeToken123', token_type: 'Bearer', padding: 'p'.repeat(100 * 1024) };
    const err = await failureFor({ ...ok(body), chunked });
    expect(err.reason).toBe('invalid_response');
    expect(err.detail).toContain('65536 bytes');
    expectNoSecrets(err, ['SizeToken123']);
  });

  it('refuses a non-Bearer token type (DPoP) without showing the token', async () => {
    const err = await failureFor(ok({ access_token: 'DpopToken123', token_type: 'DPoP' }));
    expect(err.reason).toBe('invalid_response');
    expect(err.detail).toContain('"DPoP"');
    expectNoSecrets(err, ['DpopToken123']);
  });

  it('accepts token_type in any case and a numeric-string expires_in; refuses a negative one', async () => {
    oauth.answer = ok({ access_token: 'Tok1', token_type: 'bearer', expires_in: '3599' });
    expect(await requestClientCredentialsToken(post(), via(noCertificate))).toMatchObject({
      tokenType: 'Bearer',
      expiresInS: 3599,
    });
    const err = await failureFor(ok({ access_token: 'Tok2', token_type: 'Bearer', expires_in: -5 }));
    expect(err.reason).toBe('invalid_response');
  });

  it('a 500 HTML page is an endpoint error without an OAuth error code', async () => {
    const err = await failureFor({
      status: 500,
      body: '<h1>Internal Server Error</h1>',
      contentType: 'text/html',
    });
    expect(err).toMatchObject({ reason: 'endpoint_error', endpointStatus: 500, endpointError: undefined });
  });

  it('an endpoint that never answers fails with timeout after timeoutMs', async () => {
    oauth.stall = true;
    const err = await failure(requestClientCredentialsToken(post(), via(noCertificate, { timeoutMs: 300 })));
    expect(err.reason).toBe('timeout');
    expectNoSecrets(err, [POST_SECRET]);
  });
});

describe('what is refused before or at the connection', () => {
  it('refuses a missing secret, a non-https or fragment URL, and a blocked IP literal, sending nothing', async () => {
    const cases: ClientCredentialsSettings[] = [
      { ...basic(), clientSecret: undefined },
      { ...post(), clientSecret: '' },
      { ...post(), tokenUrl: oauth.url.replace('https:', 'http:') },
      { ...post(), tokenUrl: `${oauth.url}#frag` },
    ];
    for (const settings of cases) {
      expect((await failure(requestClientCredentialsToken(settings, via(noCertificate)))).reason).toBe(
        'misconfigured',
      );
    }
    const blocked = await failure(
      requestClientCredentialsToken(post(), via(noCertificate, { allowPrivate: false })),
    );
    expect(blocked).toMatchObject({ reason: 'misconfigured' });
    expect(blocked.detail).toContain('blocked address');
    expect(oauth.requests).toHaveLength(0);
  });

  it('refuses a token endpoint name that resolves to a blocked address (the Agent’s guarded lookup)', async () => {
    const guarded = new DispatcherCache({ timeouts, allowPrivate: false, idleAgentTtlMs: 0 });
    try {
      const leased = guarded.lease({
        key: 'guarded',
        secureContext: createSecureContext({ ca: oauth.trustAnchorsPem }),
      });
      const err = await failure(
        requestClientCredentialsToken(
          { ...post(), tokenUrl: oauth.url.replace('127.0.0.1', 'localhost') },
          via(leased, { allowPrivate: false }),
        ),
      );
      leased.release();
      expect(err).toMatchObject({ reason: 'unreachable', upstreamCode: 'forward_destination_blocked' });
      expect(oauth.requests).toHaveLength(0);
    } finally {
      await guarded.close();
    }
  });

  it('refuses a token endpoint whose certificate the connection’s trust anchors do not verify', async () => {
    const otherPki = await makePki('Other');
    const leased = dispatchers.lease({
      key: 't1/no-certificate#other-anchors',
      secureContext: createSecureContext({ ca: otherPki.root.certPem }),
    });
    try {
      const err = await failure(requestClientCredentialsToken(post(), via(leased)));
      expect(err).toMatchObject({ reason: 'unreachable', upstreamCode: 'upstream_tls_failed' });
      expect(oauth.requests).toHaveLength(0);
    } finally {
      leased.release();
    }
  });
});
