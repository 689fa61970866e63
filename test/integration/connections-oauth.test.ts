/**
 * Forwards through OAuth 2.0 client-credentials connections against a real token endpoint and
 * resource server on loopback (test/helpers/oauth-server.ts), on SQLite and PostgreSQL: each client
 * authentication method, certificate-bound tokens when the switch is on (RFC 8705 §3), one token
 * request for many parallel callers, renewal at expiry, a 401 dropping the token, and endpoint
 * errors as `oauth_token_failed`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends, databaseText } from '../helpers/backends.js';
import { ManualClock } from '../helpers/lifecycle.js';
import {
  type OAuthServer,
  type ResourceAnswer,
  type ResourceServer,
  startOAuthServer,
  startResourceServer,
  x5tS256,
} from '../helpers/oauth-server.js';
import { build, createConnection, createTenant, logLines, uploadIdentity } from '../helpers/twoway.js';

const backends = await appBackends();

const BASIC_SECRET = 'oauth-basic-S3cret:with+plus/8f21';
const POST_SECRET = 'oauth-post-S3cret-93d0c7aa51';

describe.each(backends)('OAuth connections on $name', (backend) => {
  const clock = new ManualClock();
  const twoway = build({ backend, clock });
  let pki: TestPki;
  let key: string;
  let leaf: CertKey;
  let oauth: OAuthServer;
  let api: ResourceServer;
  let plainApi: ResourceServer;

  beforeAll(async () => {
    pki = await makePki();
    key = await createTenant(twoway, 'acme');
    leaf = await pki.leaf({ cn: 'acme-oauth' });
    await uploadIdentity(twoway, pki, 'acme', key, leaf);
    oauth = await startOAuthServer(pki, [
      { clientId: 'basic-client', method: 'client_secret_basic', clientSecret: BASIC_SECRET },
      { clientId: 'post-client', method: 'client_secret_post', clientSecret: POST_SECRET },
      { clientId: 'mtls-client', method: 'tls_client_auth', certificate: leaf },
    ]);
    api = await startResourceServer(pki, oauth);
    plainApi = await startResourceServer(pki, oauth, undefined, { clientCertificate: false });
  });

  afterAll(async () => {
    for (const server of [api, plainApi, oauth]) await server?.close();
  });

  async function connection(
    name: string,
    baseUrl: string,
    auth: Record<string, unknown>,
    certificate: boolean,
  ) {
    await createConnection(twoway, 'acme', key, {
      name,
      baseUrl,
      auth: { type: 'oauth2_client_credentials', ...auth },
      clientCertificate: { enabled: certificate },
      trustAnchorsPem: pki.root.certPem,
    });
  }

  const forward = (name: string): Promise<Response> =>
    fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: { authorization: `Bearer ${key}`, 'twoway-connection': name, 'twoway-forward-url': 'orders' },
    });

  async function answer(response: Response): Promise<ResourceAnswer> {
    expect(response.status, await response.clone().text()).toBe(200);
    return (await response.json()) as ResourceAnswer;
  }

  test('client_secret_basic without a certificate: an unbound token, the secret sent as Basic only', async () => {
    await connection(
      'basic',
      plainApi.url,
      {
        tokenUrl: oauth.url,
        clientId: 'basic-client',
        clientSecret: BASIC_SECRET,
        scope: 'orders:read',
        clientAuthentication: 'client_secret_basic',
      },
      false,
    );
    const before = oauth.requests.length;
    expect(await answer(await forward('basic'))).toEqual({ clientId: 'basic-client', bound: false });
    const sent = oauth.requests.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.listener).toBe('tls');
    expect(sent[0]?.form).toEqual({ grant_type: 'client_credentials', scope: 'orders:read' });
    expect(sent[0]?.clientFingerprint).toBeUndefined();
  });

  test('client_secret_post with the switch on: the token is bound to the certificate that calls the API', async () => {
    await connection(
      'post',
      api.url,
      {
        tokenUrl: oauth.mtlsUrl,
        clientId: 'post-client',
        clientSecret: POST_SECRET,
        audience: 'orders',
        clientAuthentication: 'client_secret_post',
      },
      true,
    );
    const before = oauth.requests.length;
    expect(await answer(await forward('post'))).toEqual({ clientId: 'post-client', bound: true });
    const sent = oauth.requests[before];
    expect(sent?.listener).toBe('mtls');
    expect(sent?.clientFingerprint).toBe(leaf.fingerprintSha256);
    expect(sent?.form.client_secret).toBe(POST_SECRET);
    expect(sent?.form.audience).toBe('orders');
    const bound = [...oauth.issued.values()].filter((t) => t.clientId === 'post-client');
    expect(bound.every((t) => t.cnf?.['x5t#S256'] === x5tS256(Buffer.from(leaf.cert.rawData)))).toBe(true);
  });

  test('tls_client_auth: the handshake authenticates and only client_id is sent', async () => {
    await connection(
      'mtls',
      api.url,
      { tokenUrl: oauth.mtlsUrl, clientId: 'mtls-client', clientAuthentication: 'tls_client_auth' },
      true,
    );
    const before = oauth.requests.length;
    expect(await answer(await forward('mtls'))).toEqual({ clientId: 'mtls-client', bound: true });
    expect(oauth.requests[before]?.form).toEqual({
      grant_type: 'client_credentials',
      client_id: 'mtls-client',
    });
    expect(oauth.requests[before]?.authorization).toBeUndefined();
  });

  test('twenty parallel forwards cause one token request; the token is renewed once expires_in has passed', async () => {
    await connection(
      'parallel',
      api.url,
      { tokenUrl: oauth.mtlsUrl, clientId: 'mtls-client', clientAuthentication: 'tls_client_auth' },
      true,
    );
    const before = oauth.requests.length;
    const answers = await Promise.all(Array.from({ length: 20 }, () => forward('parallel')));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(oauth.requests.length - before).toBe(1);
    expect((await forward('parallel')).status).toBe(200);
    expect(oauth.requests.length - before).toBe(1);
    // expires_in is 3600 s; the cache renews 30 s before.
    clock.advance(3_600_000 - 29_000);
    expect((await forward('parallel')).status).toBe(200);
    expect(oauth.requests.length - before).toBe(2);
  });

  test('a 401 from the API reaches the caller and drops the token; the next forward fetches a new one', async () => {
    await connection(
      'revoked',
      api.url,
      { tokenUrl: oauth.mtlsUrl, clientId: 'mtls-client', clientAuthentication: 'tls_client_auth' },
      true,
    );
    expect((await forward('revoked')).status).toBe(200);
    const before = oauth.requests.length;
    for (const token of oauth.issued.values()) token.revoked = true;
    const refused = await forward('revoked');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('twoway-error')).toBeNull();
    expect(refused.headers.get('www-authenticate')).toContain('invalid_token');
    expect(oauth.requests.length).toBe(before);
    expect((await forward('revoked')).status).toBe(200);
    expect(oauth.requests.length - before).toBe(1);
  });

  test('a refusing token endpoint is oauth_token_failed with its error, never the secret; the API is not called', async () => {
    await connection(
      'failing',
      plainApi.url,
      {
        tokenUrl: oauth.url,
        clientId: 'post-client',
        clientSecret: POST_SECRET,
        clientAuthentication: 'client_secret_post',
      },
      false,
    );
    const accepted = plainApi.accepted() + plainApi.refused();
    oauth.failWith = { error: 'invalid_client', error_description: `bad secret ${POST_SECRET}` };
    try {
      const failed = await forward('failing');
      expect(failed.status).toBe(502);
      expect(failed.headers.get('twoway-error')).toBe('oauth_token_failed');
      const body = (await failed.json()) as { code: string; detail: string };
      expect(body.code).toBe('oauth_token_failed');
      expect(body.detail).toContain('invalid_client');
      expect(body.detail).not.toContain(POST_SECRET);
    } finally {
      oauth.failWith = null;
    }
    expect(plainApi.accepted() + plainApi.refused()).toBe(accepted);
    expect((await forward('failing')).status).toBe(200);
    const metrics = await (await twoway.call('/metrics')).text();
    expect(metrics).toMatch(/twoway_oauth_token_requests_total\{outcome="endpoint_error"\} 1\b/);
  });

  test('no client secret or access token in the database, the logs or any response', async () => {
    const stored = await databaseText(backend.name, twoway.dataDir, twoway.config.databaseUrl);
    const logs = logLines.join('\n');
    const bodies = twoway.bodies.join('\n');
    const tokens = [...oauth.issued.keys()];
    for (const secret of [BASIC_SECRET, POST_SECRET, ...tokens]) {
      expect(stored).not.toContain(secret);
      expect(stored).not.toContain(Buffer.from(secret).toString('hex'));
      expect(logs).not.toContain(secret);
      expect(bodies).not.toContain(secret);
    }
  });
});
