import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/app-error.js';
import {
  type ApiKey,
  type Identity,
  type IdentityVersion,
  type Mapping,
  openStore,
  type Store,
  type Tenant,
} from '../../src/store/index.js';
import { postgresAvailable, postgresSkipped, postgresUrl, storeBackends } from '../helpers/databases.js';

const skipPostgres = await postgresSkipped();

let counter = 0;
/** Unique per call, so tests sharing one database never collide. */
function uid(prefix: string): string {
  counter += 1;
  return `${prefix}-${counter}-${randomBytes(4).toString('hex')}`;
}

/** A page large enough for every list of these tests. */
const ALL = { limit: 1000 };

const T0 = new Date('2025-03-04T05:06:07.891Z');
/** T0 plus `ms` milliseconds. */
const later = (ms: number) => new Date(T0.getTime() + ms);

function makeTenant(): Tenant {
  return { id: uid('tenant'), name: 'Acme Corp', createdAt: T0 };
}

function makeApiKey(tenantId: string): ApiKey {
  return {
    id: uid('key'),
    tenantId,
    name: 'test',
    roles: ['admin'],
    tokenSha256: randomBytes(32).toString('hex'),
    createdAt: T0,
  };
}

function makeVersion(tenantId: string, identityId: string, version: number): IdentityVersion {
  return {
    identityId,
    tenantId,
    version,
    summary: {
      subject: `CN=client v${version}`,
      issuer: 'CN=Issuing CA,O=Example',
      serialNumber: '0A1B2C',
      fingerprintSha256: randomBytes(32).toString('hex'),
      spkiSha256: randomBytes(32).toString('hex'),
      notBefore: new Date('2025-01-01T00:00:00.001Z'),
      notAfter: new Date('2026-01-01T23:59:59.999Z'),
      keyType: 'EC',
      keySize: 256,
      curve: 'P-256',
      signatureAlgorithm: 'ecdsa-with-SHA256',
      subjectAltNames: ['DNS:client.example.com', 'IP:192.0.2.1'],
    },
    chain: [
      {
        subject: 'CN=Issuing CA,O=Example',
        issuer: 'CN=Root CA,O=Example',
        notAfter: new Date('2030-06-30T12:00:00.500Z'),
        fingerprintSha256: randomBytes(32).toString('hex'),
      },
    ],
    certificatesPem: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
    secret: {
      // Zero bytes and high bytes: binary columns must not treat the value as text.
      ciphertext: Buffer.concat([Buffer.from([0, 0, 255, 128]), randomBytes(44)]),
      iv: randomBytes(12),
      wrappedDek: randomBytes(60),
      kekId: 'local:kek-1',
    },
    createdAt: later(version * 1000),
    activatedAt: later(version * 1000),
  };
}

function makeIdentity(tenantId: string): { identity: Identity; first: IdentityVersion } {
  const id = uid('identity');
  return {
    identity: {
      id,
      tenantId,
      name: 'payments client',
      activeVersion: 1,
      disabled: false,
      createdAt: later(1000),
      updatedAt: later(1000),
    },
    first: makeVersion(tenantId, id, 1),
  };
}

function makeMapping(tenantId: string, identityId: string, overrides: Partial<Mapping> = {}): Mapping {
  return {
    id: uid('mapping'),
    tenantId,
    name: 'orders API',
    service: 'api',
    url: 'https://api.example.com/orders/',
    match: 'prefix',
    identityId,
    enabled: true,
    deleted: false,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

/** Resolves to the AppError `promise` rejects with (fails when it resolves or throws something else). */
async function appErrorOf(promise: Promise<unknown>): Promise<AppError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe.each(storeBackends())('store on $name', (backend) => {
  const skip = backend.name === 'postgres' && skipPostgres;
  let store: Store;

  beforeAll(async () => {
    if (skip) return;
    store = await backend.open();
  });
  afterAll(() => backend.cleanup());
  beforeEach((ctx) => {
    if (skip) ctx.skip();
  });

  /** Enabled, not deleted mappings of `tenantId` that name `identityId`. */
  async function activeMappings(tenantId: string, identityId: string): Promise<number> {
    const mappings = (await store.listMappings(tenantId, ALL)).items;
    return mappings.filter((m) => m.identityId === identityId && m.enabled).length;
  }

  /** A tenant with one identity (version 1 active). */
  async function seed(): Promise<{ tenant: Tenant; identity: Identity; first: IdentityVersion }> {
    const tenant = makeTenant();
    await store.createTenant(tenant);
    const { identity, first } = makeIdentity(tenant.id);
    await store.createIdentity(tenant.id, identity, first);
    return { tenant, identity, first };
  }

  it('reports its dialect and answers ping', async () => {
    expect(store.dialect).toBe(backend.name);
    await expect(store.ping()).resolves.toBeUndefined();
  });

  it('hasData is false before migrate and on an empty schema, true once a tenant or meta row exists', async () => {
    const fresh = await backend.open({ migrate: false });
    expect(await fresh.hasData()).toBe(false);
    await fresh.migrate();
    expect(await fresh.hasData()).toBe(false);
    await fresh.setMeta('kek-check', Buffer.from([1, 2, 3]));
    expect(await fresh.hasData()).toBe(true);

    const other = await backend.open();
    await other.createTenant(makeTenant());
    expect(await other.hasData()).toBe(true);
  });

  it('migrate twice is a no-op that keeps data and revision', async () => {
    const { tenant } = await seed();
    const revision = await store.getRevision();
    await store.migrate();
    await store.migrate();
    expect(await store.getRevision()).toBe(revision);
    expect(await store.getTenant(tenant.id)).toEqual(tenant);
  });

  it('creates, gets and lists tenants; a duplicate id is tenant_exists', async () => {
    const tenant = makeTenant();
    await store.createTenant(tenant);
    expect(await store.getTenant(tenant.id)).toEqual(tenant);
    expect(await store.getTenant(uid('missing'))).toBeUndefined();
    expect((await store.listTenants(ALL)).items).toContainEqual(tenant);

    const err = await appErrorOf(store.createTenant({ ...tenant, name: 'Other' }));
    expect(err.code).toBe('tenant_exists');
    expect(err.status).toBe(409);
    expect((await store.getTenant(tenant.id))?.name).toBe('Acme Corp');
  });

  it('finds an API key by hash until it is revoked', async () => {
    const tenant = makeTenant();
    await store.createTenant(tenant);
    const key = makeApiKey(tenant.id);
    await store.createApiKey(tenant.id, key);
    expect(await store.findApiKeyByHash(key.tokenSha256)).toEqual(key);
    expect(await store.findApiKeyByHash(randomBytes(32).toString('hex'))).toBeUndefined();

    expect(await store.revokeApiKey(tenant.id, key.id, later(5))).toBe(true);
    expect(await store.findApiKeyByHash(key.tokenSha256)).toBeUndefined();
    // Revoking again still reports the key exists, and changes nothing.
    const revision = await store.getRevision();
    expect(await store.revokeApiKey(tenant.id, key.id, later(9))).toBe(true);
    expect(await store.getRevision()).toBe(revision);
    expect(await store.revokeApiKey(tenant.id, uid('missing'), later(5))).toBe(false);
  });

  it('refuses a duplicate token hash with bad_request and a key of an unknown tenant with not_found', async () => {
    const tenant = makeTenant();
    await store.createTenant(tenant);
    const key = makeApiKey(tenant.id);
    await store.createApiKey(tenant.id, key);

    const dup = await appErrorOf(store.createApiKey(tenant.id, { ...key, id: uid('key') }));
    expect(dup.code).toBe('bad_request');
    expect(dup.detail).not.toContain(key.tokenSha256);

    const orphan = await appErrorOf(store.createApiKey(uid('no-tenant'), makeApiKey('x')));
    expect(orphan.code).toBe('not_found');
  });

  it('creates an identity with its active first version, lists it and its versions', async () => {
    const { tenant, identity, first } = await seed();
    expect(await store.getIdentity(tenant.id, identity.id)).toEqual(identity);
    expect((await store.listIdentities(tenant.id, ALL)).items).toEqual([identity]);
    expect(await store.listVersions(tenant.id, identity.id)).toEqual([first]);
    expect(await store.getVersion(tenant.id, identity.id, 1)).toEqual(first);
    expect(await store.getVersion(tenant.id, identity.id, 2)).toBeUndefined();

    const duplicate = await appErrorOf(store.createIdentity(tenant.id, identity, first));
    expect(duplicate.code).toBe('bad_request');
  });

  it('round-trips Buffers and Dates exactly, at the edges', async () => {
    const tenant = makeTenant();
    await store.createTenant(tenant);
    const { identity, first } = makeIdentity(tenant.id);
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    first.secret = { ciphertext: allBytes, iv: Buffer.alloc(12), wrappedDek: Buffer.alloc(0), kekId: 'k' };
    first.summary.notBefore = new Date(0);
    first.summary.notAfter = new Date('9999-12-31T23:59:59.999Z');
    first.summary.keySize = undefined;
    first.summary.curve = undefined;
    first.chain = [];
    first.createdAt = new Date('2001-02-03T04:05:06.007Z');
    first.activatedAt = new Date('2001-02-03T04:05:06.008Z');
    await store.createIdentity(tenant.id, identity, first);

    const stored = await store.getVersion(tenant.id, identity.id, 1);
    expect(stored).toEqual(first);
    expect(Buffer.isBuffer(stored?.secret.ciphertext)).toBe(true);
    expect(stored?.secret.ciphertext.equals(allBytes)).toBe(true);
    expect(stored?.secret.wrappedDek.length).toBe(0);
    expect(stored?.summary.notAfter.getTime()).toBe(first.summary.notAfter.getTime());
    expect(stored?.summary).not.toHaveProperty('keySize');
    expect(stored?.createdAt.getTime()).toBe(first.createdAt.getTime());

    const value = randomBytes(33);
    await store.setMeta(uid('meta'), value);
    expect((await store.getIdentity(tenant.id, identity.id))?.createdAt.getTime()).toBe(
      identity.createdAt.getTime(),
    );
  });

  it('numbers added versions max+1 and activates only when asked', async () => {
    const { tenant, identity } = await seed();
    const seen: number[] = [];
    const v2 = await store.addVersion(
      tenant.id,
      identity.id,
      (n) => {
        seen.push(n);
        return makeVersion(tenant.id, identity.id, n);
      },
      false,
      later(2000),
    );
    expect(v2).toBe(2);
    expect(seen).toEqual([2]);
    let current = await store.getIdentity(tenant.id, identity.id);
    expect(current?.activeVersion).toBe(1);
    expect(current?.updatedAt).toEqual(later(2000));
    expect((await store.getVersion(tenant.id, identity.id, 2))?.activatedAt).toBeUndefined();

    const v3 = await store.addVersion(
      tenant.id,
      identity.id,
      (n) => makeVersion(tenant.id, identity.id, n),
      true,
      later(3000),
    );
    expect(v3).toBe(3);
    current = await store.getIdentity(tenant.id, identity.id);
    expect(current?.activeVersion).toBe(3);
    expect((await store.getVersion(tenant.id, identity.id, 3))?.activatedAt).toEqual(later(3000));
    expect((await store.listVersions(tenant.id, identity.id)).map((v) => v.version)).toEqual([1, 2, 3]);
  });

  it('gives concurrent addVersion calls distinct, consecutive numbers', async () => {
    const { tenant, identity } = await seed();
    const numbers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.addVersion(
          tenant.id,
          identity.id,
          // Async like the real one (sealing calls the KMS), with jitter so the calls interleave.
          async (n) => {
            await sleep(Math.random() * 5);
            return makeVersion(tenant.id, identity.id, n);
          },
          i % 2 === 0,
          later(i),
        ),
      ),
    );
    expect([...numbers].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await store.listVersions(tenant.id, identity.id)).toHaveLength(9);
  });

  it('rolls addVersion back when make throws, and refuses an unknown identity with not_found', async () => {
    const { tenant, identity } = await seed();
    const revision = await store.getRevision();
    const failed = await appErrorOf(
      store.addVersion(
        tenant.id,
        identity.id,
        () => {
          throw new AppError('key_mismatch');
        },
        true,
        later(1),
      ),
    );
    expect(failed.code).toBe('key_mismatch');
    expect(await store.listVersions(tenant.id, identity.id)).toHaveLength(1);
    expect(await store.getIdentity(tenant.id, identity.id)).toEqual(identity);
    expect(await store.getRevision()).toBe(revision);

    const missing = await appErrorOf(
      store.addVersion(tenant.id, uid('missing'), (n) => makeVersion(tenant.id, 'x', n), true, later(1)),
    );
    expect(missing.code).toBe('not_found');
  });

  it('activates an existing version atomically and ignores a missing one', async () => {
    const { tenant, identity } = await seed();
    await store.addVersion(
      tenant.id,
      identity.id,
      (n) => makeVersion(tenant.id, identity.id, n),
      false,
      later(1),
    );

    await store.activateVersion(tenant.id, identity.id, 2, later(50));
    const active = await store.getIdentity(tenant.id, identity.id);
    expect(active?.activeVersion).toBe(2);
    expect(active?.updatedAt).toEqual(later(50));
    expect((await store.getVersion(tenant.id, identity.id, 2))?.activatedAt).toEqual(later(50));

    // Back to version 1 (a rollback): its activatedAt moves to the new moment.
    await store.activateVersion(tenant.id, identity.id, 1, later(60));
    expect((await store.getIdentity(tenant.id, identity.id))?.activeVersion).toBe(1);
    expect((await store.getVersion(tenant.id, identity.id, 1))?.activatedAt).toEqual(later(60));

    const revision = await store.getRevision();
    await store.activateVersion(tenant.id, identity.id, 99, later(70));
    const after = await store.getIdentity(tenant.id, identity.id);
    expect(after?.activeVersion).toBe(1);
    expect(after?.updatedAt).toEqual(later(60));
    expect(await store.getRevision()).toBe(revision);
  });

  it('soft delete hides an identity from the list but keeps it and its versions', async () => {
    const { tenant, identity } = await seed();
    const { identity: kept, first } = makeIdentity(tenant.id);
    await store.createIdentity(tenant.id, kept, first);

    await store.softDeleteIdentity(tenant.id, identity.id, later(99));
    expect((await store.listIdentities(tenant.id, ALL)).items).toEqual([kept]);
    const deleted = await store.getIdentity(tenant.id, identity.id);
    expect(deleted?.deletedAt).toEqual(later(99));
    expect(await store.listVersions(tenant.id, identity.id)).toHaveLength(1);

    // A deleted identity takes no new versions and cannot be reactivated.
    const err = await appErrorOf(
      store.addVersion(
        tenant.id,
        identity.id,
        (n) => makeVersion(tenant.id, identity.id, n),
        true,
        later(100),
      ),
    );
    expect(err.code).toBe('not_found');
    await store.softDeleteIdentity(tenant.id, identity.id, later(200));
    expect((await store.getIdentity(tenant.id, identity.id))?.deletedAt).toEqual(later(99));
  });

  it('creates, updates, soft-deletes and counts mappings', async () => {
    const { tenant, identity } = await seed();
    const a = makeMapping(tenant.id, identity.id, { trustAnchorsPem: '-----BEGIN CERTIFICATE-----\n' });
    const b = makeMapping(tenant.id, identity.id, { enabled: false, match: 'exact', createdAt: later(1) });
    await store.createMapping(tenant.id, a);
    await store.createMapping(tenant.id, b);
    expect(await store.getMapping(tenant.id, a.id)).toEqual(a);
    expect((await store.listMappings(tenant.id, ALL)).items).toEqual([a, b]);
    expect(await activeMappings(tenant.id, identity.id)).toBe(1);

    const updated: Mapping = {
      ...b,
      enabled: true,
      url: 'https://hooks.example.com/',
      service: 'webhooks',
      match: 'any',
      updatedAt: later(10),
    };
    await store.updateMapping(tenant.id, updated);
    expect(await store.getMapping(tenant.id, b.id)).toEqual(updated);
    expect(await activeMappings(tenant.id, identity.id)).toBe(2);

    const { trustAnchorsPem: _dropped, ...withoutAnchors } = a;
    const deleted: Mapping = { ...withoutAnchors, deleted: true, updatedAt: later(20) };
    await store.updateMapping(tenant.id, deleted);
    expect(await store.getMapping(tenant.id, a.id)).toEqual(deleted);
    expect((await store.listMappings(tenant.id, ALL)).items).toEqual([updated]);
    expect((await store.listMappings(tenant.id, ALL, { includeDeleted: true })).items).toEqual([
      deleted,
      updated,
    ]);
    expect(await activeMappings(tenant.id, identity.id)).toBe(1);
  });

  it('refuses a mapping to an identity that does not exist in the tenant', async () => {
    const { tenant } = await seed();
    const other = await seed();
    const unknown = await appErrorOf(store.createMapping(tenant.id, makeMapping(tenant.id, uid('missing'))));
    expect(unknown.code).toBe('not_found');
    // The composite foreign key (tenant_id, identity_id) stops cross-tenant references in the schema.
    const crossTenant = await appErrorOf(
      store.createMapping(tenant.id, makeMapping(tenant.id, other.identity.id)),
    );
    expect(crossTenant.code).toBe('not_found');
    expect((await store.listMappings(tenant.id, ALL, { includeDeleted: true })).items).toEqual([]);
  });

  it('keeps an identity that enabled mappings name, checked in the delete transaction', async () => {
    const { tenant, identity } = await seed();
    const mapping = makeMapping(tenant.id, identity.id);
    await store.createMapping(tenant.id, mapping);
    await store.createMapping(tenant.id, makeMapping(tenant.id, identity.id, { enabled: false }));
    const revision = await store.getRevision();
    expect(await store.softDeleteIdentity(tenant.id, identity.id, later(5))).toBe(1);
    expect((await store.getIdentity(tenant.id, identity.id))?.deletedAt).toBeUndefined();
    expect(await store.getRevision()).toBe(revision);
    // A disabled mapping does not keep it.
    await store.updateMapping(tenant.id, { ...mapping, enabled: false });
    expect(await store.softDeleteIdentity(tenant.id, identity.id, later(6))).toBe(0);
    expect((await store.getIdentity(tenant.id, identity.id))?.deletedAt).toEqual(later(6));
  });

  it('refuses a new mapping to a deleted identity, and enabling one that names it', async () => {
    const { tenant, identity } = await seed();
    const parked = makeMapping(tenant.id, identity.id, { enabled: false });
    await store.createMapping(tenant.id, parked);
    expect(await store.softDeleteIdentity(tenant.id, identity.id, later(5))).toBe(0);
    const revision = await store.getRevision();
    for (const enabled of [true, false]) {
      const created = await appErrorOf(
        store.createMapping(tenant.id, makeMapping(tenant.id, identity.id, { enabled })),
      );
      expect(created.code).toBe('not_found');
    }
    const enabled = await appErrorOf(store.updateMapping(tenant.id, { ...parked, enabled: true }));
    expect(enabled.code).toBe('not_found');
    expect(await store.getRevision()).toBe(revision);
    expect((await store.listMappings(tenant.id, ALL)).items).toEqual([parked]);
    // Editing or deleting the disabled mapping stays possible.
    await store.updateMapping(tenant.id, { ...parked, name: 'renamed' });
    await store.updateMapping(tenant.id, { ...parked, deleted: true });
    expect((await store.listMappings(tenant.id, ALL)).items).toEqual([]);
  });

  it('never leaves an enabled mapping on a deleted identity when a delete and a create race', async () => {
    for (let round = 0; round < 12; round += 1) {
      const { tenant, identity } = await seed();
      const [deleted, created] = await Promise.allSettled([
        store.softDeleteIdentity(tenant.id, identity.id, later(round)),
        store.createMapping(tenant.id, makeMapping(tenant.id, identity.id)),
      ]);
      const gone = (await store.getIdentity(tenant.id, identity.id))?.deletedAt !== undefined;
      const mapped = await activeMappings(tenant.id, identity.id);
      // Exactly one of the two wins, whichever runs first.
      expect(gone, `round ${round}`).toBe(mapped === 0);
      expect(deleted.status).toBe('fulfilled');
      expect(created.status === 'fulfilled').toBe(mapped === 1);
    }
  });

  it('stores binary meta values and overwrites them', async () => {
    const key = uid('meta');
    expect(await store.getMeta(key)).toBeUndefined();
    const first = Buffer.from([0, 1, 2, 0, 255]);
    await store.setMeta(key, first);
    const read = await store.getMeta(key);
    expect(Buffer.isBuffer(read)).toBe(true);
    expect(read?.equals(first)).toBe(true);
    const second = randomBytes(64);
    await store.setMeta(key, second);
    expect((await store.getMeta(key))?.equals(second)).toBe(true);
  });

  it('bumps the revision on every write and only on writes that change data', async () => {
    const revisions: number[] = [await store.getRevision()];
    const step = async (write: () => Promise<unknown>) => {
      await write();
      revisions.push(await store.getRevision());
    };
    const tenant = makeTenant();
    const key = makeApiKey(tenant.id);
    const { identity, first } = makeIdentity(tenant.id);
    const mapping = makeMapping(tenant.id, identity.id);
    await step(() => store.createTenant(tenant));
    await step(() => store.createApiKey(tenant.id, key));
    await step(() => store.revokeApiKey(tenant.id, key.id, later(1)));
    await step(() => store.createIdentity(tenant.id, identity, first));
    await step(() =>
      store.addVersion(
        tenant.id,
        identity.id,
        (n) => makeVersion(tenant.id, identity.id, n),
        false,
        later(2),
      ),
    );
    await step(() => store.activateVersion(tenant.id, identity.id, 2, later(3)));
    await step(() => store.createMapping(tenant.id, mapping));
    await step(() => store.updateMapping(tenant.id, { ...mapping, enabled: false }));
    await step(() => store.setMeta(uid('meta'), Buffer.from('x')));
    await step(() => store.softDeleteIdentity(tenant.id, identity.id, later(4)));
    for (let i = 1; i < revisions.length; i++) {
      expect(revisions[i]).toBeGreaterThan(revisions[i - 1] ?? Number.POSITIVE_INFINITY);
    }

    // Failed and no-op writes leave it alone.
    const before = await store.getRevision();
    await store.createTenant(tenant).catch(() => {});
    await store.revokeApiKey(tenant.id, uid('missing'), later(5));
    await store.softDeleteIdentity(tenant.id, uid('missing'), later(5));
    await store.updateMapping(tenant.id, makeMapping(tenant.id, identity.id));
    expect(await store.getRevision()).toBe(before);
  });

  it("never returns, changes or deletes another tenant's rows", async () => {
    const owner = await seed();
    const { tenant: intruder } = await seed();
    const ownerId = owner.tenant.id;
    const id = owner.identity.id;
    const key = makeApiKey(ownerId);
    await store.createApiKey(ownerId, key);
    const mapping = makeMapping(ownerId, id);
    await store.createMapping(ownerId, mapping);
    await store.addVersion(ownerId, id, (n) => makeVersion(ownerId, id, n), false, later(1));
    const revision = await store.getRevision();
    const snapshot = async () => ({
      identity: await store.getIdentity(ownerId, id),
      versions: await store.listVersions(ownerId, id),
      mapping: await store.getMapping(ownerId, mapping.id),
      key: await store.findApiKeyByHash(key.tokenSha256),
    });
    const before = await snapshot();

    const other = intruder.id;
    expect(await store.getIdentity(other, id)).toBeUndefined();
    expect((await store.listIdentities(other, ALL)).items).not.toContainEqual(
      expect.objectContaining({ id }),
    );
    expect(await store.listVersions(other, id)).toEqual([]);
    expect(await store.getVersion(other, id, 1)).toBeUndefined();
    expect(await store.getMapping(other, mapping.id)).toBeUndefined();
    expect((await store.listMappings(other, ALL, { includeDeleted: true })).items).toEqual([]);
    expect(await activeMappings(other, id)).toBe(0);

    expect(await store.revokeApiKey(other, key.id, later(9))).toBe(false);
    await store.activateVersion(other, id, 2, later(9));
    await store.softDeleteIdentity(other, id, later(9));
    await store.updateMapping(other, { ...mapping, tenantId: other, enabled: false, deleted: true });
    // The tenantId argument decides, not the field inside the object.
    await store.updateMapping(other, { ...mapping, enabled: false });
    const added = await appErrorOf(
      store.addVersion(other, id, (n) => makeVersion(other, id, n), true, later(9)),
    );
    expect(added.code).toBe('not_found');

    expect(await snapshot()).toEqual(before);
    expect(await store.getRevision()).toBe(revision);
  });
});

describe('openStore', () => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'twoway-open-'));
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('opens SQLite at <dataDir>/twoway.db when no URL is given', async () => {
    const store = await openStore(undefined, join(dataDir, 'nested'));
    try {
      expect(store.dialect).toBe('sqlite');
      await store.migrate();
      expect(existsSync(join(dataDir, 'nested', 'twoway.db'))).toBe(true);
    } finally {
      await store.close();
      await store.close();
    }
  });

  it('refuses an unknown URL scheme without echoing the URL', async () => {
    const err = await openStore('mysql://root:hunter2@db/twoway', dataDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain('mysql:');
    expect((err as Error).message).not.toContain('hunter2');
  });

  it.skipIf(skipPostgres)('opens PostgreSQL for a postgresql:// URL', async () => {
    expect(await postgresAvailable()).toBe(true);
    const store = await openStore(postgresUrl.replace(/^postgres:/, 'postgresql:'), dataDir);
    try {
      expect(store.dialect).toBe('postgres');
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
