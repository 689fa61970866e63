/**
 * Per-tenant quotas (TWOWAY_QUOTA_*): each one, when reached, answers `409 quota_exceeded` and stores
 * nothing (same row counts and store revision before and after); deleting frees a place; concurrent
 * creates cannot overshoot. On SQLite and PostgreSQL, through the HTTP API.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS } from '../../src/certificates/index.js';
import { type CertKey, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { makeCsr } from '../helpers/edge-clients.js';
import { ManualClock, snapshotDatabase } from '../helpers/lifecycle.js';
import { type BuiltTwoway, build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();

let tenants = 0;
/** A new tenant of `twoway` and its key. */
async function newTenant(twoway: BuiltTwoway, prefix: string): Promise<{ id: string; key: string }> {
  tenants += 1;
  const id = `${prefix}-${tenants}-${Date.now().toString(36)}`;
  return { id, key: await createTenant(twoway, id) };
}

/** Status and code of an answer. */
async function outcome(response: Response): Promise<[number, string | undefined]> {
  const body = (await response.json()) as { code?: string };
  return [response.status, body.code];
}

describe.each(backends)('quotas on $name', (backend) => {
  const clock = new ManualClock();
  const twoway = build({
    backend,
    clock,
    env: {
      TWOWAY_QUOTA_IDENTITIES: '2',
      TWOWAY_QUOTA_VERSIONS_PER_IDENTITY: '2',
      TWOWAY_QUOTA_MAPPINGS: '2',
      TWOWAY_QUOTA_CLIENT_CERTIFICATES: '3',
      TWOWAY_QUOTA_ISSUED_PER_DAY: '2',
      TWOWAY_QUOTA_NOTIFICATION_TARGETS: '2',
    },
  });
  let pki: TestPki;
  let identityLeaf: CertKey;
  let csrPem: string;

  beforeAll(async () => {
    pki = await makePki('Quota Test');
    identityLeaf = await pki.leaf({ cn: 'quota identity' });
    const work = tempDir('twoway-quota-');
    try {
      csrPem = readFileSync((await makeCsr(work.dir, 'quota', '/CN=quota-client')).csr, 'utf8');
    } finally {
      work.cleanup();
    }
  });

  /** `call` with JSON and the tenant's key. */
  const send = (key: string, path: string, method: string, json?: unknown) =>
    twoway.call(path, { method, token: key, ...(json !== undefined ? { json } : {}) });

  /** Expects `request` to be refused with quota_exceeded and to change nothing in the database. */
  async function refusedWithoutTrace(request: () => Promise<Response>): Promise<void> {
    const before = await snapshotDatabase(twoway);
    expect(await outcome(await request())).toEqual([409, 'quota_exceeded']);
    expect(await snapshotDatabase(twoway)).toEqual(before);
  }

  const uploadIdentity = (key: string, tenant: string) =>
    send(key, `/v1/tenants/${tenant}/identities`, 'POST', {
      name: 'client',
      certificatePem: identityLeaf.certPem + pki.intermediate.certPem,
      privateKeyPem: identityLeaf.keyPem,
    });

  test('identities: the third is refused and stores nothing; deleting one frees its place', async () => {
    const { id, key } = await newTenant(twoway, 'qi');
    const first = (await (await uploadIdentity(key, id)).json()) as { id: string };
    expect((await uploadIdentity(key, id)).status).toBe(201);
    await refusedWithoutTrace(() => uploadIdentity(key, id));
    const answer = await uploadIdentity(key, id);
    expect(((await answer.json()) as { detail: string }).detail).toContain('TWOWAY_QUOTA_IDENTITIES');
    expect((await send(key, `/v1/tenants/${id}/identities/${first.id}`, 'DELETE')).status).toBe(204);
    expect((await uploadIdentity(key, id)).status).toBe(201);
  });

  test('versions: an identity with two versions takes no third', async () => {
    const { id, key } = await newTenant(twoway, 'qv');
    const identity = (await (await uploadIdentity(key, id)).json()) as { id: string };
    const rotate = () =>
      send(key, `/v1/tenants/${id}/identities/${identity.id}/versions`, 'POST', {
        certificatePem: identityLeaf.certPem,
        privateKeyPem: identityLeaf.keyPem,
      });
    expect((await rotate()).status).toBe(201);
    await refusedWithoutTrace(rotate);
    const view = (await (await send(key, `/v1/tenants/${id}/identities/${identity.id}`, 'GET')).json()) as {
      versions: unknown[];
      activeVersion: number;
    };
    expect([view.versions.length, view.activeVersion]).toEqual([2, 2]);
  });

  test('mappings: the third is refused; six at once make exactly two; a deleted one frees its place', async () => {
    const { id, key } = await newTenant(twoway, 'qm');
    const identity = (await (await uploadIdentity(key, id)).json()) as { id: string };
    const create = (n: number) =>
      send(key, `/v1/tenants/${id}/mappings`, 'POST', {
        name: `m${n}`,
        service: 'api',
        url: `https://api.example.com/${n}/`,
        identityId: identity.id,
      });
    const answers = await Promise.all([1, 2, 3, 4, 5, 6].map(create));
    const outcomes = await Promise.all(answers.map(outcome));
    expect(outcomes.filter(([status]) => status === 201)).toHaveLength(2);
    expect(outcomes.filter(([status, code]) => status === 409 && code === 'quota_exceeded')).toHaveLength(4);
    const listed = (await (await send(key, `/v1/tenants/${id}/mappings`, 'GET')).json()) as {
      items: { id: string }[];
    };
    expect(listed.items).toHaveLength(2);
    await refusedWithoutTrace(() => create(7));
    expect((await send(key, `/v1/tenants/${id}/mappings/${listed.items[0]?.id}`, 'DELETE')).status).toBe(200);
    expect((await create(8)).status).toBe(201);
  });

  test('client certificates: uploads and CSRs past the quota are refused (revoked ones count, deleted ones do not)', async () => {
    const { id, key } = await newTenant(twoway, 'qc');
    const upload = async () => {
      const leaf = await pki.leaf({ cn: 'quota client' });
      return send(key, `/v1/tenants/${id}/client-certificates`, 'POST', {
        name: 'c',
        certificatePem: leaf.certPem,
      });
    };
    const sign = () =>
      send(key, `/v1/tenants/${id}/certificate-signing-requests`, 'POST', { name: 'csr', csrPem });
    const first = (await (await upload()).json()) as { id: string };
    expect((await upload()).status).toBe(201);
    expect((await sign()).status).toBe(201);
    const fourth = await pki.leaf({ cn: 'quota client 4' });
    await refusedWithoutTrace(() =>
      send(key, `/v1/tenants/${id}/client-certificates`, 'POST', {
        name: 'c',
        certificatePem: fourth.certPem,
      }),
    );
    // Refused before the CA signs anything.
    await refusedWithoutTrace(sign);
    expect((await send(key, `/v1/tenants/${id}/client-certificates/${first.id}/revoke`, 'POST')).status).toBe(
      200,
    );
    await refusedWithoutTrace(upload);
    expect((await send(key, `/v1/tenants/${id}/client-certificates/${first.id}`, 'DELETE')).status).toBe(204);
    expect((await upload()).status).toBe(201);
  });

  test('issued per day: the third CSR within 24 hours is refused, deleting does not help, the window moving does', async () => {
    const { id, key } = await newTenant(twoway, 'qd');
    const sign = () =>
      send(key, `/v1/tenants/${id}/certificate-signing-requests`, 'POST', { name: 'csr', csrPem });
    const issued: string[] = [];
    for (let i = 0; i < 2; i++) {
      const answer = await sign();
      expect(answer.status).toBe(201);
      issued.push(((await answer.json()) as { id: string }).id);
      clock.advance(60_000);
    }
    await refusedWithoutTrace(sign);
    for (const certificate of issued) {
      expect((await send(key, `/v1/tenants/${id}/client-certificates/${certificate}`, 'DELETE')).status).toBe(
        204,
      );
    }
    const refused = await sign();
    expect(await outcome(refused.clone())).toEqual([409, 'quota_exceeded']);
    expect(((await refused.json()) as { detail: string }).detail).toContain('TWOWAY_QUOTA_ISSUED_PER_DAY');
    // 24 hours after the first issuance, one place is free again; not yet two.
    clock.advance(DAY_MS - 2 * 60_000 + 1);
    expect((await sign()).status).toBe(201);
    await refusedWithoutTrace(sign);
  });

  test('notification targets: three addresses and URLs together are refused; two are kept', async () => {
    const { id, key } = await newTenant(twoway, 'qn');
    const path = `/v1/tenants/${id}/notification-settings`;
    const ok = await send(key, path, 'PUT', { emails: ['a@example.com'], webhookUrls: [] });
    expect(ok.status).toBe(200);
    await refusedWithoutTrace(() =>
      send(key, path, 'PUT', {
        emails: ['a@example.com', 'b@example.com'],
        webhookUrls: ['https://hooks.example.com/twoway'],
      }),
    );
    const kept = (await (await send(key, path, 'GET')).json()) as { emails: string[]; webhookUrls: string[] };
    expect([kept.emails, kept.webhookUrls]).toEqual([['a@example.com'], []]);
    const two = await send(key, path, 'PUT', {
      emails: ['a@example.com'],
      webhookUrls: ['https://hooks.example.com/twoway'],
    });
    expect(two.status).toBe(200);
  });
});
