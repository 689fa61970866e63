/**
 * The connections API (API.md "Connections") and the tenant's default identity, on SQLite and
 * PostgreSQL: views with `secretSet` and the greyed-out switch, write-only sealed secrets, bad input
 * that gets its code and changes nothing, and the audit entries.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { KmsError } from '../../src/kms/types.js';
import { makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends, databaseText } from '../helpers/backends.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { build, buildInTest, createTenant, logLines, uploadIdentity } from '../helpers/twoway.js';

const backends = await appBackends();

const PASSWORD = 'basic-Pa55word-4f1c9e2a7b';
const HEADER_VALUE = 'hdr-V4lue-8d3e6f0a1b2c';
const CLIENT_SECRET = 'oauth-Cl1ent-S3cret-5a9c7e';

interface ConnectionView {
  id: string;
  name: string;
  baseUrl: string;
  auth: Record<string, unknown> & { type: string; secretSet: boolean };
  clientCertificate: {
    enabled: boolean;
    identityId?: string;
    available: boolean;
    unavailableReason?: string;
  };
  trustAnchorsPem?: string;
  enabled: boolean;
}

describe.each(backends)('connections API on $name', (backend) => {
  const twoway = build({ backend });
  let pki: TestPki;
  let key: string;

  beforeAll(async () => {
    pki = await makePki();
    key = await createTenant(twoway, 'acme');
  });

  const create = (json: unknown, token = key, tenant = 'acme') =>
    twoway.call(`/v1/tenants/${tenant}/connections`, { method: 'POST', token, json });
  const patch = (id: string, json: unknown) =>
    twoway.call(`/v1/tenants/acme/connections/${id}`, { method: 'PATCH', token: key, json });
  const view = async (response: Response, status = 200): Promise<ConnectionView> => {
    expect(response.status, await response.clone().text()).toBe(status);
    return (await response.json()) as ConnectionView;
  };
  const code = async (response: Response): Promise<string> =>
    ((await response.json()) as { code: string }).code;

  test('a tenant without identities: the switch is greyed out (no_identity) and cannot be turned on', async () => {
    const made = await view(await create({ name: 'plain', baseUrl: 'https://api.example.com/v1/' }), 201);
    expect(made.auth).toEqual({ type: 'none', secretSet: false });
    expect(made.clientCertificate).toEqual({
      enabled: false,
      available: false,
      unavailableReason: 'no_identity',
    });
    expect(made.baseUrl).toBe('https://api.example.com/v1/');
    expect(made.enabled).toBe(true);

    const before = await snapshotDatabase(twoway);
    const refused = await patch(made.id, { clientCertificate: { enabled: true } });
    expect(refused.status).toBe(409);
    expect(await code(refused)).toBe('client_certificate_unavailable');
    const refusedCreate = await create({
      name: 'with-cert',
      baseUrl: 'https://api.example.com/',
      clientCertificate: { enabled: true },
    });
    expect(await code(refusedCreate)).toBe('client_certificate_unavailable');
    expect(await snapshotDatabase(twoway)).toEqual(before);
  });

  test('the first identity becomes the default; the switch turns on and presents it; PATCH moves the default', async () => {
    const first = await uploadIdentity(
      twoway,
      pki,
      'acme',
      key,
      await pki.leaf({ cn: 'acme-first' }),
      'first',
    );
    const tenant = (await (await twoway.call('/v1/tenants/acme', { token: key })).json()) as {
      defaultIdentityId?: string;
    };
    expect(tenant.defaultIdentityId).toBe(first);
    const second = await uploadIdentity(
      twoway,
      pki,
      'acme',
      key,
      await pki.leaf({ cn: 'acme-second' }),
      'second',
    );
    expect(
      ((await (await twoway.call('/v1/tenants/acme')).json()) as { defaultIdentityId: string })
        .defaultIdentityId,
    ).toBe(first);

    const made = await view(
      await create({
        name: 'mtls',
        baseUrl: 'https://api.example.com/',
        clientCertificate: { enabled: true },
      }),
      201,
    );
    expect(made.clientCertificate).toEqual({ enabled: true, available: true });

    const moved = await twoway.call('/v1/tenants/acme', {
      method: 'PATCH',
      token: key,
      json: { defaultIdentityId: second },
    });
    expect(moved.status).toBe(200);
    expect(((await moved.json()) as { defaultIdentityId: string }).defaultIdentityId).toBe(second);

    const unknown = await twoway.call('/v1/tenants/acme', {
      method: 'PATCH',
      token: key,
      json: { defaultIdentityId: 'idn_nosuchidentity' },
    });
    expect(unknown.status).toBe(404);
    expect(
      ((await (await twoway.call('/v1/tenants/acme')).json()) as { defaultIdentityId: string })
        .defaultIdentityId,
    ).toBe(second);

    // Disabling the default greys the switch out; turning it on elsewhere is refused.
    await twoway.call(`/v1/tenants/acme/identities/${second}`, {
      method: 'PATCH',
      token: key,
      json: { disabled: true },
    });
    const greyed = await view(await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { token: key }));
    expect(greyed.clientCertificate).toEqual({
      enabled: true,
      available: false,
      unavailableReason: 'identity_disabled',
    });
    const plain = await view(await create({ name: 'plain-2', baseUrl: 'https://api.example.com/' }), 201);
    expect(await code(await patch(plain.id, { clientCertificate: { enabled: true } }))).toBe(
      'client_certificate_unavailable',
    );
    // Naming a usable identity of its own makes it available again.
    const named = await view(
      await patch(plain.id, { clientCertificate: { enabled: true, identityId: first } }),
    );
    expect(named.clientCertificate).toEqual({ enabled: true, identityId: first, available: true });

    // An identity an enabled connection presents is in use; a default identity deleted stops being it.
    const inUse = await twoway.call(`/v1/tenants/acme/identities/${first}`, { method: 'DELETE', token: key });
    expect(inUse.status).toBe(409);
    expect(await code(inUse)).toBe('identity_in_use');
    await twoway.call(`/v1/tenants/acme/identities/${second}`, {
      method: 'PATCH',
      token: key,
      json: { disabled: false },
    });
    expect(
      (await twoway.call(`/v1/tenants/acme/identities/${second}`, { method: 'DELETE', token: key })).status,
    ).toBe(204);
    const cleared = (await (await twoway.call('/v1/tenants/acme')).json()) as { defaultIdentityId?: string };
    expect(cleared.defaultIdentityId).toBeUndefined();
    const orphan = await view(await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { token: key }));
    expect(orphan.clientCertificate).toEqual({
      enabled: true,
      available: false,
      unavailableReason: 'no_identity',
    });
    await twoway.call('/v1/tenants/acme', {
      method: 'PATCH',
      token: key,
      json: { defaultIdentityId: first },
    });
  });

  test('each auth type: settings in the view, secrets never; PATCH keeps a secret not sent, and a new type needs its own', async () => {
    const oauthSettings = {
      tokenUrl: 'https://login.example.com/oauth/token',
      clientId: 'acme-client',
      scope: 'read',
      audience: 'https://api.example.com',
      clientAuthentication: 'client_secret_post',
    };
    const made: Record<string, ConnectionView> = {};
    for (const [name, auth, shown] of [
      ['basic', { type: 'basic', username: 'acme', password: PASSWORD }, { type: 'basic', username: 'acme' }],
      [
        'header',
        { type: 'header', headerName: 'X-Api-Key', headerValue: HEADER_VALUE },
        { type: 'header', headerName: 'X-Api-Key' },
      ],
      [
        'oauth',
        { type: 'oauth2_client_credentials', ...oauthSettings, clientSecret: CLIENT_SECRET },
        { type: 'oauth2_client_credentials', ...oauthSettings },
      ],
    ] as const) {
      made[name] = await view(await create({ name, baseUrl: `https://api.example.com/${name}`, auth }), 201);
      expect(made[name]?.auth).toEqual({ ...shown, secretSet: true });
    }
    const basic = made.basic as ConnectionView;

    const renamed = await view(
      await patch(basic.id, { name: 'basic-renamed', auth: { type: 'basic', username: 'acme2' } }),
    );
    expect(renamed.auth).toEqual({ type: 'basic', username: 'acme2', secretSet: true });
    const kept = await twoway.store.getConnection('acme', basic.id);
    expect(await twoway.services.connections.openSecret(kept!)).toBe(PASSWORD);

    const before = await snapshotDatabase(twoway);
    const noSecret = await patch(basic.id, { auth: { type: 'header', headerName: 'X-Key' } });
    expect(noSecret.status).toBe(422);
    expect(await code(noSecret)).toBe('connection_invalid');
    expect(await snapshotDatabase(twoway)).toEqual(before);

    const list = (await (await twoway.call('/v1/tenants/acme/connections', { token: key })).json()) as {
      items: ConnectionView[];
    };
    expect(list.items.map((c) => c.name)).toEqual(
      expect.arrayContaining(['basic-renamed', 'header', 'oauth']),
    );
  });

  test('a sealed secret is bound to its row: copied to another connection it does not open', async () => {
    const a = await view(
      await create({
        name: 'aad-a',
        baseUrl: 'https://a.example/',
        auth: { type: 'basic', username: 'a', password: PASSWORD },
      }),
      201,
    );
    const b = await view(
      await create({
        name: 'aad-b',
        baseUrl: 'https://b.example/',
        auth: { type: 'basic', username: 'b', password: 'other-pw' },
      }),
      201,
    );
    const stored = await twoway.store.getConnection('acme', a.id);
    const target = await twoway.store.getConnection('acme', b.id);
    await twoway.store.updateConnection('acme', { ...target!, secret: stored!.secret! });
    const copied = await twoway.store.getConnection('acme', b.id);
    await expect(twoway.services.connections.openSecret(copied!)).rejects.toBeInstanceOf(KmsError);
    // An older version of the same row does not open either.
    await patch(a.id, { auth: { type: 'basic', username: 'a', password: 'replaced-pw' } });
    const replaced = await twoway.store.getConnection('acme', a.id);
    await expect(
      twoway.services.connections.openSecret({ ...replaced!, secret: stored!.secret! }),
    ).rejects.toBeInstanceOf(KmsError);
  });

  test('bad input gets its code and changes nothing', async () => {
    await create({ name: 'taken', baseUrl: 'https://api.example.com/' });
    const before = await snapshotDatabase(twoway);
    const base = { name: 'x', baseUrl: 'https://api.example.com/' };
    const withAuth = (auth: Record<string, unknown>) => ({ ...base, auth });
    const oauth = (fields: Record<string, unknown>) =>
      withAuth({
        type: 'oauth2_client_credentials',
        tokenUrl: 'https://login.example/t',
        clientId: 'c',
        ...fields,
      });
    const cases: [unknown, number, string][] = [
      [{ ...base, baseUrl: 'http://api.example.com/' }, 422, 'connection_invalid'],
      [{ ...base, baseUrl: 'api.example.com/v1' }, 422, 'connection_invalid'],
      [{ ...base, baseUrl: 'https://user:pw@api.example.com/' }, 422, 'connection_invalid'],
      [{ ...base, baseUrl: 'https://api.example.com/?q=1' }, 422, 'connection_invalid'],
      [withAuth({ type: 'digest' }), 400, 'bad_request'],
      [withAuth({ type: 'basic', username: 'u' }), 422, 'connection_invalid'],
      [withAuth({ type: 'basic', username: 'a:b', password: 'p' }), 422, 'connection_invalid'],
      [withAuth({ type: 'header', headerName: 'X-Key' }), 422, 'connection_invalid'],
      [withAuth({ type: 'header', headerName: 'Host', headerValue: 'v' }), 422, 'connection_invalid'],
      [
        withAuth({ type: 'header', headerName: 'Twoway-Tenant', headerValue: 'v' }),
        422,
        'connection_invalid',
      ],
      [
        withAuth({ type: 'header', headerName: 'X-Key', headerValue: 'a\r\nInjected: 1' }),
        422,
        'connection_invalid',
      ],
      [oauth({ clientAuthentication: 'client_secret_basic' }), 422, 'connection_invalid'],
      [
        oauth({
          tokenUrl: 'http://login.example/t',
          clientSecret: 's',
          clientAuthentication: 'client_secret_post',
        }),
        422,
        'connection_invalid',
      ],
      [oauth({ clientAuthentication: 'tls_client_auth' }), 422, 'connection_invalid'],
      [{ ...base, name: 'con_lookalike' }, 422, 'connection_invalid'],
      [{ ...base, name: ' padded' }, 400, 'bad_request'],
      [{ ...base, name: 'taken' }, 409, 'connection_exists'],
      [{ ...base, trustAnchorsPem: 'not a pem' }, 422, 'invalid_trust_anchors'],
      // The bounds of every trust anchors text: 64 KiB of PEM, 100 certificates.
      [{ ...base, trustAnchorsPem: pki.root.certPem.repeat(101) }, 413, 'trust_anchors_too_large'],
      [
        { ...base, trustAnchorsPem: pki.root.certPem.repeat(Math.ceil(70_000 / pki.root.certPem.length)) },
        413,
        'trust_anchors_too_large',
      ],
      [{ ...base, clientCertificate: { enabled: false, identityId: 'idn_nosuch' } }, 404, 'not_found'],
      [{ ...base, password: PASSWORD }, 400, 'bad_request'],
    ];
    for (const [json, status, expected] of cases) {
      const response = await create(json);
      const body = (await response.json()) as { code: string; detail: string };
      expect({ json, status: response.status, code: body.code }).toEqual({ json, status, code: expected });
      expect(body.detail).not.toContain(PASSWORD);
    }
    expect(await snapshotDatabase(twoway)).toEqual(before);
  });

  test('private base and token URLs are refused without TWOWAY_FORWARD_ALLOW_PRIVATE', async () => {
    const strict = await buildInTest({ backend, env: { TWOWAY_FORWARD_ALLOW_PRIVATE: 'false' } });
    const strictKey = await createTenant(strict, 'strict');
    const before = await snapshotDatabase(strict);
    for (const json of [
      { name: 'x', baseUrl: 'https://127.0.0.1:8443/' },
      { name: 'x', baseUrl: 'https://169.254.169.254/latest/' },
      { name: 'x', baseUrl: 'https://[::1]/' },
      {
        name: 'x',
        baseUrl: 'https://api.example.com/',
        auth: {
          type: 'oauth2_client_credentials',
          tokenUrl: 'https://10.0.0.1/token',
          clientId: 'c',
          clientSecret: 's',
          clientAuthentication: 'client_secret_post',
        },
      },
    ]) {
      const response = await strict.call('/v1/tenants/strict/connections', {
        method: 'POST',
        token: strictKey,
        json,
      });
      expect(response.status).toBe(403);
      expect(await code(response)).toBe('forward_destination_blocked');
    }
    expect(await snapshotDatabase(strict)).toEqual(before);
  });

  test('delete removes the connection and its secret; another tenant sees none of it', async () => {
    const made = await view(
      await create({
        name: 'gone',
        baseUrl: 'https://api.example.com/',
        auth: { type: 'basic', username: 'u', password: 'gone-pw-1234' },
      }),
      201,
    );
    const otherKey = await createTenant(twoway, 'other');
    expect((await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { token: otherKey })).status).toBe(
      404,
    );
    expect((await twoway.call(`/v1/tenants/other/connections/${made.id}`, { token: otherKey })).status).toBe(
      404,
    );
    expect(
      (
        (await (await twoway.call('/v1/tenants/other/connections', { token: otherKey })).json()) as {
          items: unknown[];
        }
      ).items,
    ).toEqual([]);
    expect(
      (await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { method: 'DELETE', token: key })).status,
    ).toBe(204);
    expect((await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { token: key })).status).toBe(404);
    expect(
      (await twoway.call(`/v1/tenants/acme/connections/${made.id}`, { method: 'DELETE', token: key })).status,
    ).toBe(404);
    expect(await twoway.store.getConnection('acme', made.id)).toBeUndefined();
  });

  test('changes are audited with their settings, never a secret', async () => {
    const events = (await (
      await twoway.call('/v1/tenants/acme/audit-events?limit=500', { token: key })
    ).json()) as {
      items: { action: string; detail: Record<string, unknown> }[];
    };
    const actions = events.items.map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'connection.create',
        'connection.update',
        'connection.delete',
        'tenant.update',
      ]),
    );
    const created = events.items.find((e) => e.action === 'connection.create' && e.detail.name === 'basic');
    expect(created?.detail).toEqual({
      name: 'basic',
      baseUrl: 'https://api.example.com/basic',
      authType: 'basic',
      clientCertificate: { enabled: false },
      enabled: true,
    });
    const text = JSON.stringify(events);
    for (const secret of [PASSWORD, HEADER_VALUE, CLIENT_SECRET]) expect(text).not.toContain(secret);
  });

  test('no secret in plaintext in the database, the logs or any response', async () => {
    const stored = await databaseText(backend.name, twoway.dataDir, twoway.config.databaseUrl);
    const logs = logLines.join('\n');
    const bodies = twoway.bodies.join('\n');
    for (const secret of [PASSWORD, HEADER_VALUE, CLIENT_SECRET]) {
      for (const encoding of [
        secret,
        Buffer.from(secret).toString('hex'),
        Buffer.from(secret).toString('base64'),
      ]) {
        expect(stored).not.toContain(encoding);
        expect(logs).not.toContain(encoding);
        expect(bodies).not.toContain(encoding);
      }
    }
  });
});
