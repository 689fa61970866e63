import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { ManualClock } from '../helpers/lifecycle.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, createTenant, uploadPem } from '../helpers/twoway.js';

const backends = await appBackends();

interface KeyItem {
  id: string;
  name: string;
  roles: string[];
  createdAt: string;
  lastUsedAt?: string;
}

describe.each(backends)('API keys with roles on $name', (backend) => {
  const clock = new ManualClock();
  const twoway = build({ backend, clock });
  let pki: TestPki;
  let upstream: MtlsServer;
  let admin: string;

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    admin = await createTenant(twoway, 'keys');
    const leaf = await pki.leaf({ cn: 'keys-client' });
    const id = await uploadPem(twoway, 'keys', leaf, pki.intermediate.certPem, { token: admin });
    const json = { name: 'm', service: 'api', url: `${upstream.url}/`, identityId: id };
    const mapping = await twoway.call('/v1/tenants/keys/mappings', {
      method: 'POST',
      token: admin,
      json: { ...json, trustAnchorsPem: pki.root.certPem },
    });
    expect(mapping.status).toBe(201);
  });

  afterAll(() => upstream?.close());

  async function key(json: unknown): Promise<{ id: string; apiKey: string; name: string; roles: string[] }> {
    const response = await twoway.call('/v1/tenants/keys/api-keys', { method: 'POST', token: admin, json });
    expect(response.status, await response.clone().text()).toBe(201);
    return (await response.json()) as { id: string; apiKey: string; name: string; roles: string[] };
  }

  const forward = (token: string) =>
    fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: {
        authorization: `Bearer ${token}`,
        'twoway-service': 'api',
        'twoway-forward-url': `${upstream.url}/x`,
      },
    });

  test('a key holding only runtime:forward forwards and does nothing else; a viewer key cannot forward', async () => {
    await twoway.call('/v1/tenants/keys/roles/forwarder', {
      method: 'PUT',
      token: admin,
      json: { permissions: ['runtime:forward'] },
    });
    const backendKey = await key({ name: 'backend', roles: ['forwarder'] });
    const viewer = await key({ name: 'dashboard', roles: ['viewer'] });
    const ok = await forward(backendKey.apiKey);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Echo).clientFingerprint).toBeDefined();
    for (const path of [
      '/v1/tenants/keys/identities',
      '/v1/tenants/keys/audit-events',
      '/v1/tenants/keys/api-keys',
    ]) {
      expect((await twoway.call(path, { token: backendKey.apiKey })).status, path).toBe(403);
    }
    const refused = await forward(viewer.apiKey);
    expect([refused.status, refused.headers.get('twoway-error')]).toEqual([403, 'forbidden']);
    const resolve = (token: string) =>
      twoway.call('/v1/runtime/resolve', {
        method: 'POST',
        token,
        json: { items: [{ tenant: 'keys', service: 'api', url: `${upstream.url}/x` }] },
      });
    expect((await resolve(viewer.apiKey)).status).toBe(403);
    expect((await resolve(backendKey.apiKey)).status).toBe(200);
    expect((await twoway.call('/v1/tenants/keys/identities', { token: viewer.apiKey })).status).toBe(200);
  });

  test("a change to a key's role applies to the key at once", async () => {
    await twoway.call('/v1/tenants/keys/roles/reader', {
      method: 'PUT',
      token: admin,
      json: { permissions: ['identities:read'] },
    });
    const reader = await key({ name: 'reader', roles: ['reader'] });
    expect((await twoway.call('/v1/tenants/keys/identities', { token: reader.apiKey })).status).toBe(200);
    await twoway.call('/v1/tenants/keys/roles/reader', {
      method: 'PUT',
      token: admin,
      json: { permissions: ['mappings:read'] },
    });
    expect((await twoway.call('/v1/tenants/keys/identities', { token: reader.apiKey })).status).toBe(403);
    expect((await twoway.call('/v1/tenants/keys/mappings', { token: reader.apiKey })).status).toBe(200);
  });

  test('keys are listed without secrets, with lastUsedAt written at most once a minute, in pages', async () => {
    const made = await key(undefined);
    expect(made).toMatchObject({ name: 'API key', roles: ['admin'], apiKey: expect.stringMatching(/^tw_/) });
    const listed = async () => {
      const items: KeyItem[] = [];
      let cursor: string | undefined;
      do {
        const page = (await (
          await twoway.call(`/v1/tenants/keys/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`, {
            token: admin,
          })
        ).json()) as { items: KeyItem[]; nextCursor?: string };
        items.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor);
      return items;
    };
    const before = (await listed()).find((k) => k.id === made.id);
    expect(before).toEqual({ id: made.id, name: 'API key', roles: ['admin'], createdAt: expect.any(String) });
    const first = clock.now().toISOString();
    await twoway.call('/v1/tenants/keys', { token: made.apiKey });
    clock.advance(30_000);
    await twoway.call('/v1/tenants/keys', { token: made.apiKey });
    const lastUsed = async () => {
      // Written beside the request, not before its answer: wait for it.
      for (let i = 0; i < 50; i++) {
        const found = (await listed()).find((k) => k.id === made.id)?.lastUsedAt;
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    };
    expect(await lastUsed()).toBe(first);
    clock.advance(30_000);
    await twoway.call('/v1/tenants/keys', { token: made.apiKey });
    let seen = await lastUsed();
    for (let i = 0; i < 50 && seen === first; i++) {
      await new Promise((r) => setTimeout(r, 20));
      seen = await lastUsed();
    }
    expect(seen).toBe(clock.now().toISOString());
    const all = await listed();
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(new Set(all.map((k) => k.id)).size).toBe(all.length);
    expect(JSON.stringify(all)).not.toMatch(/tw_/);
    // Revoked keys are not listed.
    await twoway.call(`/v1/tenants/keys/api-keys/${made.id}`, { method: 'DELETE', token: admin });
    expect((await listed()).map((k) => k.id)).not.toContain(made.id);
    const bad = await twoway.call('/v1/tenants/keys/api-keys', {
      method: 'POST',
      token: admin,
      json: { roles: ['nobody'] },
    });
    expect([bad.status, ((await bad.json()) as { code: string }).code]).toEqual([422, 'unknown_role']);
  });
});
