/**
 * Forwards through connections against real HTTPS servers on loopback, on SQLite and PostgreSQL:
 * each static auth type against a server that demands it (and a client certificate when the switch
 * is on), the URL rules of baseUrl, the refusals (nothing is sent), Proxy-Authorization
 * pass-through and the Twoway-Identity override.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';
import { type ApiServer, startApiServer } from '../helpers/api-server.js';
import { appBackends } from '../helpers/backends.js';
import { DAY, ManualClock } from '../helpers/lifecycle.js';
import type { Echo } from '../helpers/mtls-server.js';
import {
  build,
  buildInTest,
  createConnection,
  createTenant,
  logLines,
  OPERATOR_TOKEN,
  uploadIdentity,
} from '../helpers/twoway.js';

const backends = await appBackends();

const PASSWORD = 'fwd-Pa55word-0b7e1d9c';
const HEADER_VALUE = 'fwd-Api-Key-6c2f8a41e3';

describe.each(backends)('forward through connections on $name', (backend) => {
  const twoway = build({ backend });
  let pki: TestPki;
  let key: string;
  let leafA: CertKey;
  let leafB: CertKey;
  let identityA: string;
  let identityB: string;
  let plainApi: ApiServer;
  let mtlsApi: ApiServer;
  let basicApi: ApiServer;
  let headerApi: ApiServer;

  beforeAll(async () => {
    pki = await makePki();
    key = await createTenant(twoway, 'acme');
    leafA = await pki.leaf({ cn: 'acme-a' });
    leafB = await pki.leaf({ cn: 'acme-b' });
    identityA = await uploadIdentity(twoway, pki, 'acme', key, leafA, 'a');
    identityB = await uploadIdentity(twoway, pki, 'acme', key, leafB, 'b');
    plainApi = await startApiServer(pki);
    mtlsApi = await startApiServer(pki, { clientCertificate: true });
    basicApi = await startApiServer(pki, {
      clientCertificate: true,
      auth: { type: 'basic', username: 'acme', password: PASSWORD },
    });
    headerApi = await startApiServer(pki, {
      clientCertificate: true,
      auth: { type: 'header', name: 'X-Api-Key', value: HEADER_VALUE },
    });
  });

  afterAll(async () => {
    for (const server of [plainApi, mtlsApi, basicApi, headerApi]) await server?.close();
  });

  function connection(json: Record<string, unknown>, tenant = 'acme', token = key): Promise<string> {
    return createConnection(twoway, tenant, token, { trustAnchorsPem: pki.root.certPem, ...json });
  }

  function forward(headers: Record<string, string>, init: RequestInit = {}): Promise<Response> {
    return fetch(`${twoway.url}/v1/runtime/forward`, {
      ...init,
      headers: { authorization: `Bearer ${key}`, ...headers },
    });
  }

  async function echoOf(response: Response): Promise<Echo> {
    expect(response.status, await response.clone().text()).toBe(200);
    expect(response.headers.get('twoway-error')).toBeNull();
    return (await response.json()) as Echo;
  }

  async function refusal(
    response: Response,
  ): Promise<{ status: number; code: string; header: string | null }> {
    const body = (await response.json()) as { code: string };
    return { status: response.status, code: body.code, header: response.headers.get('twoway-error') };
  }

  test('auth none: a relative URL goes below baseUrl, an absolute one must lie under it, none means baseUrl', async () => {
    const id = await connection({ name: 'plain', baseUrl: `${plainApi.url}/v1` });
    const byName = await echoOf(
      await forward({
        'twoway-connection': 'plain',
        'twoway-forward-url': 'orders/7?x=1',
        'x-custom': 'kept',
      }),
    );
    expect(byName.path).toBe('/v1/orders/7?x=1');
    expect(byName.headers['x-custom']).toBe('kept');
    expect(byName.headers.authorization).toBeUndefined();
    expect(byName.headers['twoway-connection']).toBeUndefined();
    expect(byName.clientFingerprint).toBe('');
    const byId = await echoOf(
      await forward({ 'twoway-connection': id, 'twoway-forward-url': `${plainApi.url}/v1/items` }),
    );
    expect(byId.path).toBe('/v1/items');
    expect((await echoOf(await forward({ 'twoway-connection': 'plain' }))).path).toBe('/v1');
    expect(
      (await echoOf(await forward({ 'twoway-connection': 'plain', 'twoway-forward-url': '/a/b' }))).path,
    ).toBe('/v1/a/b');
  });

  test('a URL that leaves baseUrl is forward_url_invalid and nothing is sent', async () => {
    const sent = plainApi.requests.length;
    const handshakes = plainApi.connections();
    for (const url of [
      '../admin',
      '..%2Fadmin',
      '%2e%2e/admin',
      '..;/admin',
      'x/../../admin',
      '..\\admin',
      `${plainApi.url}/admin`,
      `${plainApi.url}/v10/x`,
      `${plainApi.url}/v1/..%2Fadmin`,
      `https://localhost:${new URL(plainApi.url).port}/v1/x`,
      `http://127.0.0.1:${new URL(plainApi.url).port}/v1/x`,
    ]) {
      const answer = await forward({ 'twoway-connection': 'plain', 'twoway-forward-url': url });
      expect({ url, ...(await refusal(answer)) }).toEqual({
        url,
        status: 400,
        code: 'forward_url_invalid',
        header: 'forward_url_invalid',
      });
    }
    expect(plainApi.requests.length).toBe(sent);
    expect(plainApi.connections()).toBe(handshakes);
  });

  test('basic with the switch on: the default identity is presented and the caller’s Authorization replaced', async () => {
    await connection({
      name: 'basic',
      baseUrl: basicApi.url,
      auth: { type: 'basic', username: 'acme', password: PASSWORD },
      clientCertificate: { enabled: true },
    });
    const echo = await echoOf(
      await forward(
        {
          'twoway-connection': 'basic',
          'twoway-forward-url': '/accounts',
          authorization: `Basic ${Buffer.from('intruder:guess').toString('base64')}`,
          'proxy-authorization': `Bearer ${key}`,
        },
        {},
      ),
    );
    expect(echo.headers.authorization).toBe(`Basic ${Buffer.from(`acme:${PASSWORD}`).toString('base64')}`);
    expect(echo.clientFingerprint).toBe(leafA.fingerprintSha256);
    expect(echo.headers['proxy-authorization']).toBeUndefined();
    // The same server refuses a request without the credential: it is the connection's that passed.
    expect(await refusedWithoutCredential(basicApi)).toBe(true);
  });

  /** True when the basic API answered 401 to a request that had no credential (sent by the mapping path). */
  async function refusedWithoutCredential(api: ApiServer): Promise<boolean> {
    const before = api.requests.length;
    await twoway.call('/v1/tenants/acme/mappings', {
      method: 'POST',
      token: key,
      json: {
        name: 'basic-direct',
        service: 'direct',
        url: `${api.url}/`,
        identityId: identityA,
        trustAnchorsPem: pki.root.certPem,
      },
    });
    const answer = await forward({ 'twoway-service': 'direct', 'twoway-forward-url': `${api.url}/accounts` });
    return answer.status === 401 && api.requests.length === before + 1;
  }

  test('header auth with a named identity: the value replaces the caller’s, once', async () => {
    await connection({
      name: 'header',
      baseUrl: `${headerApi.url}/api`,
      auth: { type: 'header', headerName: 'X-Api-Key', headerValue: HEADER_VALUE },
      clientCertificate: { enabled: true, identityId: identityB },
    });
    const echo = await echoOf(
      await forward({
        'twoway-connection': 'header',
        'twoway-forward-url': 'v2/ping',
        'x-api-key': 'caller-guess',
      }),
    );
    expect(echo.headers['x-api-key']).toBe(HEADER_VALUE);
    expect(echo.path).toBe('/api/v2/ping');
    expect(echo.clientFingerprint).toBe(leafB.fingerprintSha256);
  });

  test('Proxy-Authorization: Bearer authenticates to Twoway and the Authorization header reaches the remote server', async () => {
    const viaConnection = await echoOf(
      await forward({
        'proxy-authorization': `Bearer ${key}`,
        authorization: 'Bearer remote-api-token',
        'twoway-connection': 'plain',
      }),
    );
    expect(viaConnection.headers.authorization).toBe('Bearer remote-api-token');
    const mapped = await twoway.call('/v1/tenants/acme/mappings', {
      method: 'POST',
      token: key,
      json: {
        name: 'mtls',
        service: 'api',
        url: `${mtlsApi.url}/`,
        identityId: identityA,
        trustAnchorsPem: pki.root.certPem,
      },
    });
    expect(mapped.status).toBe(201);
    const viaMapping = await echoOf(
      await fetch(`${twoway.url}/v1/runtime/forward`, {
        headers: {
          'proxy-authorization': `Bearer ${key}`,
          authorization: 'Bearer remote-api-token',
          'twoway-service': 'api',
          'twoway-forward-url': `${mtlsApi.url}/x`,
        },
      }),
    );
    expect(viaMapping.headers.authorization).toBe('Bearer remote-api-token');
    expect(viaMapping.clientFingerprint).toBe(leafA.fingerprintSha256);
    // With Authorization used for Twoway it is consumed, as before.
    const consumed = await echoOf(
      await forward({ 'twoway-service': 'api', 'twoway-forward-url': `${mtlsApi.url}/x` }),
    );
    expect(consumed.headers.authorization).toBeUndefined();
    const wrong = await fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: {
        'proxy-authorization': 'Basic eDp5',
        authorization: `Bearer ${key}`,
        'twoway-connection': 'plain',
      },
    });
    expect(await refusal(wrong)).toEqual({ status: 401, code: 'unauthorized', header: 'unauthorized' });
  });

  test('Twoway-Identity presents another identity of the tenant for one request, counted and not audited', async () => {
    const audit = await (await twoway.call('/v1/tenants/acme/audit-events?limit=500')).text();
    const onMapping = await echoOf(
      await forward({
        'twoway-service': 'api',
        'twoway-forward-url': `${mtlsApi.url}/x`,
        'twoway-identity': identityB,
      }),
    );
    expect(onMapping.clientFingerprint).toBe(leafB.fingerprintSha256);
    const onConnection = await echoOf(
      await forward({
        'twoway-connection': 'header',
        'twoway-forward-url': 'x',
        'twoway-identity': identityA,
      }),
    );
    expect(onConnection.clientFingerprint).toBe(leafA.fingerprintSha256);
    expect(
      await refusal(
        await forward({
          'twoway-service': 'api',
          'twoway-forward-url': `${mtlsApi.url}/x`,
          'twoway-identity': 'idn_nosuch',
        }),
      ),
    ).toEqual({ status: 404, code: 'not_found', header: 'not_found' });
    const metrics = await (await twoway.call('/metrics')).text();
    expect(metrics).toMatch(/twoway_forward_identity_overrides_total\{route="mapping"\} 1\b/);
    expect(metrics).toMatch(/twoway_forward_identity_overrides_total\{route="connection"\} 1\b/);
    expect(await (await twoway.call('/v1/tenants/acme/audit-events?limit=500')).text()).toBe(audit);
  });

  test('unknown, foreign and disabled connections are refused with their codes', async () => {
    const otherKey = await createTenant(twoway, 'other');
    const foreign = await connection({ name: 'foreign', baseUrl: plainApi.url }, 'other', otherKey);
    await connection({ name: 'off', baseUrl: plainApi.url, enabled: false });
    const sent = plainApi.requests.length;
    expect(await refusal(await forward({ 'twoway-connection': 'nosuch' }))).toEqual({
      status: 404,
      code: 'connection_not_found',
      header: 'connection_not_found',
    });
    expect((await refusal(await forward({ 'twoway-connection': foreign }))).code).toBe(
      'connection_not_found',
    );
    expect((await refusal(await forward({ 'twoway-connection': 'foreign' }))).code).toBe(
      'connection_not_found',
    );
    expect(await refusal(await forward({ 'twoway-connection': 'off' }))).toEqual({
      status: 409,
      code: 'connection_disabled',
      header: 'connection_disabled',
    });
    expect(
      (await refusal(await forward({ 'twoway-connection': 'plain', 'twoway-service': 'api' }))).code,
    ).toBe('bad_request');
    expect(plainApi.requests.length).toBe(sent);
    // The operator names the tenant.
    const operator = await fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: {
        authorization: `Bearer ${OPERATOR_TOKEN}`,
        'twoway-tenant': 'other',
        'twoway-connection': 'foreign',
      },
    });
    expect(operator.status).toBe(200);
  });

  test('an identity that became unusable: client_certificate_unavailable, nothing sent without the certificate', async () => {
    const greyKey = await createTenant(twoway, 'grey');
    const leaf = await pki.leaf({ cn: 'grey' });
    const identity = await uploadIdentity(twoway, pki, 'grey', greyKey, leaf);
    await connection(
      { name: 'mtls', baseUrl: mtlsApi.url, clientCertificate: { enabled: true } },
      'grey',
      greyKey,
    );
    const call = () =>
      fetch(`${twoway.url}/v1/runtime/forward`, {
        headers: { authorization: `Bearer ${greyKey}`, 'twoway-connection': 'mtls' },
      });
    expect((await echoOf(await call())).clientFingerprint).toBe(leaf.fingerprintSha256);
    await twoway.call(`/v1/tenants/grey/identities/${identity}`, {
      method: 'PATCH',
      token: greyKey,
      json: { disabled: true },
    });
    const handshakes = mtlsApi.connections();
    const sent = mtlsApi.requests.length;
    expect(await refusal(await call())).toEqual({
      status: 409,
      code: 'client_certificate_unavailable',
      header: 'client_certificate_unavailable',
    });
    expect(mtlsApi.connections()).toBe(handshakes);
    expect(mtlsApi.requests.length).toBe(sent);
    // Deleted, it is no longer the default: no identity at all, still nothing sent.
    await twoway.call(`/v1/tenants/grey/identities/${identity}`, { method: 'DELETE', token: greyKey });
    expect((await refusal(await call())).code).toBe('client_certificate_unavailable');
    expect(mtlsApi.connections()).toBe(handshakes);
  });

  test("without the connection's trust anchors the test server is not trusted: upstream_tls_failed", async () => {
    await createConnection(twoway, 'acme', key, { name: 'untrusted', baseUrl: plainApi.url });
    const sent = plainApi.requests.length;
    expect(await refusal(await forward({ 'twoway-connection': 'untrusted' }))).toEqual({
      status: 502,
      code: 'upstream_tls_failed',
      header: 'upstream_tls_failed',
    });
    expect(plainApi.requests.length).toBe(sent);
  });

  test('no connection secret in the logs', () => {
    const logs = logLines.join('\n');
    for (const secret of [PASSWORD, HEADER_VALUE, Buffer.from(`acme:${PASSWORD}`).toString('base64')]) {
      expect(logs).not.toContain(secret);
    }
  });
});

describe.each(backends)('the greyed-out switch over time on $name', (backend) => {
  test('an identity past notAfter: the view says identity_expired and forwards are refused before sending', async () => {
    const clock = new ManualClock();
    const twoway = await buildInTest({ backend, clock });
    const pki = await makePki();
    const api = await startApiServer(pki, { clientCertificate: true });
    try {
      const key = await createTenant(twoway, 'acme');
      const leaf = await pki.leaf({ cn: 'short', notAfter: new Date(Date.now() + 2 * DAY) });
      await uploadIdentity(twoway, pki, 'acme', key, leaf);
      const id = await createConnection(twoway, 'acme', key, {
        name: 'api',
        baseUrl: api.url,
        clientCertificate: { enabled: true },
        trustAnchorsPem: pki.root.certPem,
      });
      clock.advance(3 * DAY);
      const view = (await (
        await twoway.call(`/v1/tenants/acme/connections/${id}`, { token: key })
      ).json()) as {
        clientCertificate: unknown;
      };
      expect(view.clientCertificate).toEqual({
        enabled: true,
        available: false,
        unavailableReason: 'identity_expired',
      });
      const answer = await fetch(`${twoway.url}/v1/runtime/forward`, {
        headers: { authorization: `Bearer ${key}`, 'twoway-connection': 'api' },
      });
      expect(answer.status).toBe(409);
      expect(answer.headers.get('twoway-error')).toBe('client_certificate_unavailable');
      expect(api.connections()).toBe(0);
    } finally {
      await api.close();
    }
  });
});
