import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS as DAY } from '../../src/certificates/index.js';
import { makePki, type TestPki } from '../fixtures/pki.js';
import { ManualClock } from '../helpers/lifecycle.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, createTenant } from '../helpers/twoway.js';

describe('identity lifecycle through the API', () => {
  let pki: TestPki;
  let upstream: MtlsServer;
  const clock = new ManualClock();
  const twoway = build({ clock });

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    await createTenant(twoway, 'life', 'Life');
  });

  afterAll(() => upstream?.close());

  async function upload(notAfterDays: number, path: string, notBefore?: Date): Promise<string> {
    const leaf = await pki.leaf({
      cn: `life-${path}`,
      notAfter: new Date(clock.now().getTime() + notAfterDays * DAY),
      ...(notBefore ? { notBefore } : {}),
    });
    const response = await twoway.call('/v1/tenants/life/identities', {
      method: 'POST',
      json: {
        name: path,
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    const mapped = await twoway.call('/v1/tenants/life/mappings', {
      method: 'POST',
      json: {
        name: path,
        service: 'api',
        url: `${upstream.url}/${path}`,
        identityId: id,
        trustAnchorsPem: pki.root.certPem,
      },
    });
    expect(mapped.status).toBe(201);
    return id;
  }

  function forward(path: string): Promise<Response> {
    return fetch(`${twoway.url}/v1/runtime/forward`, {
      headers: {
        authorization: 'Bearer test-operator-token-0123456789',
        'twoway-tenant': 'life',
        'twoway-service': 'api',
        'twoway-forward-url': `${upstream.url}/${path}/x`,
      },
    });
  }

  test('status moves active → expiring → expired with time, and an expired identity is never presented', async () => {
    const id = await upload(10, 'short');
    const status = async () =>
      ((await (await twoway.call(`/v1/tenants/life/identities/${id}`)).json()) as { status: string }).status;
    expect(await status()).toBe('active');
    expect((await forward('short')).status).toBe(200);
    clock.advance(4 * DAY);
    expect(await status()).toBe('expiring');
    expect((await forward('short')).status).toBe(200);
    clock.advance(7 * DAY);
    expect(await status()).toBe('expired');
    const handshakes = upstream.handshakes();
    const refused = await forward('short');
    expect(refused.status).toBe(409);
    expect(refused.headers.get('twoway-error')).toBe('identity_expired');
    expect(upstream.handshakes()).toBe(handshakes);
    // An expired version cannot be activated again either.
    const activate = await twoway.call(`/v1/tenants/life/identities/${id}/versions/1/activate`, {
      method: 'POST',
    });
    expect(activate.status).toBe(409);
    expect(((await activate.json()) as { code: string }).code).toBe('version_not_usable');
  });

  test('an identity before its notBefore is refused with identity_not_yet_valid, never sent', async () => {
    await upload(100, 'early', new Date(clock.now().getTime() - 3_600_000));
    clock.advance(-2 * 3_600_000);
    try {
      const handshakes = upstream.handshakes();
      const refused = await forward('early');
      expect(refused.status).toBe(409);
      expect(refused.headers.get('twoway-error')).toBe('identity_not_yet_valid');
      expect(upstream.handshakes()).toBe(handshakes);
    } finally {
      clock.advance(2 * 3_600_000);
    }
    // (Not forwarded afterwards: the test clock runs days ahead, and the upstream checks notBefore
    // against the real time.)
  });

  test('a disabled identity is refused with identity_disabled, and works again once enabled', async () => {
    const id = await upload(100, 'toggle');
    expect((await forward('toggle')).status).toBe(200);
    const disabled = await twoway.call(`/v1/tenants/life/identities/${id}`, {
      method: 'PATCH',
      json: { disabled: true },
    });
    expect(((await disabled.json()) as { status: string }).status).toBe('disabled');
    const refused = await forward('toggle');
    expect(refused.status).toBe(409);
    expect(refused.headers.get('twoway-error')).toBe('identity_disabled');
    await twoway.call(`/v1/tenants/life/identities/${id}`, { method: 'PATCH', json: { disabled: false } });
    expect((await forward('toggle')).status).toBe(200);
  });

  test('an identity in use cannot be deleted; after its mapping is deleted it can, and it is gone', async () => {
    const id = await upload(100, 'gone');
    const inUse = await twoway.call(`/v1/tenants/life/identities/${id}`, { method: 'DELETE' });
    expect(inUse.status).toBe(409);
    expect(((await inUse.json()) as { code: string }).code).toBe('identity_in_use');
    const mappings = (await (await twoway.call('/v1/tenants/life/mappings')).json()) as {
      items: { id: string; identityId: string }[];
    };
    const mapping = mappings.items.find((m) => m.identityId === id);
    const removed = await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, { method: 'DELETE' });
    expect(((await removed.json()) as { deleted: boolean }).deleted).toBe(true);
    expect((await forward('gone')).headers.get('twoway-error')).toBe('no_mapping');
    const revive = await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, {
      method: 'PATCH',
      json: { enabled: true },
    });
    expect(revive.status).toBe(404);
    expect((await twoway.call(`/v1/tenants/life/identities/${id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await twoway.call(`/v1/tenants/life/identities/${id}`)).status).toBe(404);
    const listed = (await (await twoway.call('/v1/tenants/life/mappings?includeDeleted=true')).json()) as {
      items: { id: string }[];
    };
    expect(listed.items.some((m) => m.id === mapping?.id)).toBe(true);
  });

  test('a disabled mapping whose identity was deleted cannot be enabled again', async () => {
    const id = await upload(100, 'parked');
    const mappings = (await (await twoway.call('/v1/tenants/life/mappings')).json()) as {
      items: { id: string; identityId: string }[];
    };
    const mapping = mappings.items.find((m) => m.identityId === id);
    await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, {
      method: 'PATCH',
      json: { enabled: false },
    });
    expect((await twoway.call(`/v1/tenants/life/identities/${id}`, { method: 'DELETE' })).status).toBe(204);
    const revive = await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, {
      method: 'PATCH',
      json: { enabled: true },
    });
    expect(revive.status).toBe(404);
    expect(((await revive.json()) as { code: string }).code).toBe('not_found');
    const after = (await (await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`)).json()) as {
      enabled: boolean;
    };
    expect(after.enabled).toBe(false);
    expect((await forward('parked')).headers.get('twoway-error')).toBe('no_mapping');
  });

  test('PATCH mapping switches identity, and disabling it stops matching', async () => {
    const first = await upload(100, 'patch');
    const second = await upload(100, 'other');
    const mappings = (await (await twoway.call('/v1/tenants/life/mappings')).json()) as {
      items: { id: string; identityId: string }[];
    };
    const mapping = mappings.items.find((m) => m.identityId === first);
    const patched = await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, {
      method: 'PATCH',
      json: { identityId: second },
    });
    expect(((await patched.json()) as { identityId: string }).identityId).toBe(second);
    await twoway.call(`/v1/tenants/life/mappings/${mapping?.id}`, {
      method: 'PATCH',
      json: { enabled: false },
    });
    expect((await forward('patch')).headers.get('twoway-error')).toBe('no_mapping');
  });
});
