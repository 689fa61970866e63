import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type {
  DeliveryRecord,
  Identity,
  IdentityVersion,
  NotificationRecord,
  Store,
} from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { postgresSkipped, postgresUrl, storeBackends } from '../helpers/databases.js';

const skipPostgres = await postgresSkipped();
const T0 = new Date('2030-03-04T05:06:07.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
let counter = 0;
const uid = (prefix: string) => `${prefix}_${++counter}${randomBytes(3).toString('hex')}`;

function version(tenantId: string, identityId: string, n: number, activateAt?: Date): IdentityVersion {
  return {
    identityId,
    tenantId,
    version: n,
    summary: {
      subject: `CN=v${n}`,
      issuer: 'CN=CA',
      serialNumber: '01',
      fingerprintSha256: randomBytes(32).toString('hex'),
      spkiSha256: randomBytes(32).toString('hex'),
      notBefore: at(-86_400_000),
      notAfter: at(86_400_000 * 30),
      keyType: 'EC',
      curve: 'P-256',
      keySize: 256,
      signatureAlgorithm: 'ecdsa-with-SHA256',
      subjectAltNames: [],
    },
    chain: [],
    certificatesPem: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
    secret: {
      ciphertext: randomBytes(40),
      iv: randomBytes(12),
      wrappedDek: randomBytes(60),
      kekId: 'local:kek-1',
    },
    createdAt: T0,
    ...(activateAt ? { activateAt } : {}),
  };
}

function notification(tenantId: string, objectId: string, thresholdDays: number): NotificationRecord {
  return {
    id: uid('evt'),
    tenantId,
    objectType: 'identity',
    objectId,
    objectVersion: '1',
    thresholdDays,
    kind: thresholdDays === 0 ? 'expired' : 'expiring',
    notAfter: at(86_400_000 * 6),
    payload: '{"id":"x"}',
    createdAt: T0,
  };
}

function delivery(tenantId: string, target: string): DeliveryRecord {
  return {
    id: uid('dlv'),
    notificationId: '',
    tenantId,
    channel: 'webhook',
    target,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: T0,
    createdAt: T0,
    updatedAt: T0,
  };
}

describe.each(storeBackends())('lifecycle store on $name', (backend) => {
  describe.skipIf(backend.name === 'postgres' && skipPostgres)('', () => {
    let store: Store;
    let tenantId: string;

    beforeAll(async () => {
      store = await backend.open();
      tenantId = uid('tenant');
      await store.createTenant({ id: tenantId, name: 'T', createdAt: T0 });
    });
    afterAll(() => backend.cleanup());

    test('a notification is claimed once per object, version and threshold, also by racing claimers', async () => {
      const objectId = uid('idn');
      const revision = await store.getRevision();
      const results = await Promise.all(
        [1, 2, 3, 4].map(() => store.claimNotification(tenantId, notification(tenantId, objectId, 7), [])),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      // A larger threshold after a smaller one was sent is covered by it; a smaller one is new.
      expect(await store.claimNotification(tenantId, notification(tenantId, objectId, 30), [])).toBe(false);
      const n0 = notification(tenantId, objectId, 0);
      const d = delivery(tenantId, 'https://hooks.example/');
      expect(await store.claimNotification(tenantId, n0, [d])).toBe(true);
      expect(
        await store.claimNotification(
          tenantId,
          { ...notification(tenantId, objectId, 7), objectVersion: '2' },
          [],
        ),
      ).toBe(true);
      // Bookkeeping does not bump the revision (other processes keep their caches).
      expect(await store.getRevision()).toBe(revision);
      const listed = (await store.listNotifications(tenantId, { limit: 10 })).items;
      expect(listed.find((l) => l.notification.id === n0.id)?.deliveries.map((x) => x.id)).toEqual([d.id]);
    });

    test('a due delivery is leased by one worker only; attempts are recorded', async () => {
      const n = notification(tenantId, uid('idn'), 7);
      const d = delivery(tenantId, 'https://a.example/');
      await store.claimNotification(tenantId, n, [d]);
      const due = await store.listDueDeliveries(at(0), 100);
      expect(due.map((x) => x.id)).toContain(d.id);
      // Pending deliveries here are all due at T0: the scheduler's timer is armed for it.
      expect(await store.nextDeliveryAt()).toEqual(T0);
      expect((await store.listDueDeliveries(at(-1), 100)).map((x) => x.id)).not.toContain(d.id);
      const leases = await Promise.all(
        [1, 2, 3].map(() => store.leaseDelivery(tenantId, d.id, T0, at(60_000))),
      );
      expect(leases.filter(Boolean)).toHaveLength(1);
      expect((await store.listDueDeliveries(at(1_000), 100)).map((x) => x.id)).not.toContain(d.id);
      await store.recordDeliveryAttempt(
        tenantId,
        {
          deliveryId: d.id,
          attempt: 1,
          at: at(10),
          ok: false,
          statusCode: 500,
          error: 'HTTP 500',
          durationMs: 3,
        },
        { status: 'pending', nextAttemptAt: at(30_000), lastError: 'HTTP 500' },
      );
      await store.recordDeliveryAttempt(
        tenantId,
        { deliveryId: d.id, attempt: 2, at: at(30_000), ok: true, statusCode: 204, durationMs: 2 },
        { status: 'delivered', deliveredAt: at(30_000) },
      );
      const [listed] = (await store.listNotifications(tenantId, { limit: 50 })).items.filter(
        (l) => l.notification.id === n.id,
      );
      expect(listed?.deliveries[0]).toMatchObject({
        status: 'delivered',
        attempts: 2,
        deliveredAt: at(30_000),
      });
      expect(listed?.attempts.map((a) => [a.attempt, a.ok, a.statusCode])).toEqual([
        [1, false, 500],
        [2, true, 204],
      ]);
      expect(await store.getNotification(uid('other-tenant'), n.id)).toBeUndefined();
    });

    test('alerts are raised once, kept, resolved when gone, raised anew when back', async () => {
      const base = {
        tenantId,
        objectType: 'identity',
        objectId: uid('idn'),
        objectVersion: '1',
        kind: 'expiring' as const,
        name: 'n',
        fingerprintSha256: 'ab',
        notAfter: at(86_400_000),
        thresholdDays: 7,
      };
      await store.syncAlerts(tenantId, [base], at(0));
      await store.syncAlerts(tenantId, [base], at(1_000));
      expect((await store.listAlerts(tenantId, { limit: 10 })).items).toEqual([{ ...base, raisedAt: at(0) }]);
      await store.syncAlerts(tenantId, [], at(2_000));
      expect((await store.listAlerts(tenantId, { limit: 10 })).items).toEqual([]);
      await store.syncAlerts(tenantId, [{ ...base, thresholdDays: 1 }], at(3_000));
      expect((await store.listAlerts(tenantId, { limit: 10 })).items).toEqual([
        { ...base, thresholdDays: 1, raisedAt: at(3_000) },
      ]);
    });

    test('audit events: filters, newest first, paging by sequence, tenant isolation', async () => {
      const objectId = uid('map');
      for (let i = 0; i < 5; i++) {
        await store.appendAuditEvent(tenantId, {
          id: uid('aud'),
          tenantId,
          at: at(i * 1_000),
          actor: 'key_1',
          action: i === 0 ? 'mapping.create' : 'mapping.update',
          objectType: 'mapping',
          objectId,
          sourceAddress: '127.0.0.1',
          detail: { i },
        });
      }
      const ten = { limit: 10 };
      const all = (await store.listAuditEvents(tenantId, { objectId }, ten)).items;
      expect(all.map((e) => e.detail.i)).toEqual([4, 3, 2, 1, 0]);
      expect(
        (await store.listAuditEvents(tenantId, { objectId, action: 'mapping.create' }, ten)).items.length,
      ).toBe(1);
      const window = await store.listAuditEvents(
        tenantId,
        { objectId, since: at(1_000), until: at(3_000) },
        ten,
      );
      expect(window.items.map((e) => e.detail.i)).toEqual([2, 1]);
      const first = await store.listAuditEvents(tenantId, { objectId }, { limit: 2 });
      expect(first.items.map((e) => e.detail.i)).toEqual([4, 3]);
      const page = await store.listAuditEvents(
        tenantId,
        { objectId },
        { limit: 2, cursor: first.nextCursor },
      );
      expect(page.items.map((e) => e.detail.i)).toEqual([2, 1]);
      expect((await store.listAuditEvents(uid('other'), { objectId }, ten)).items).toEqual([]);
    });

    test('scheduled activations: due ones are listed, cleared by activation or by hand, earliest first', async () => {
      const id = uid('idn');
      const identity: Identity = {
        id,
        tenantId,
        name: 'i',
        activeVersion: 1,
        disabled: false,
        createdAt: T0,
        updatedAt: T0,
      };
      await store.createIdentity(tenantId, identity, version(tenantId, id, 1));
      await store.addVersion(tenantId, id, (n) => version(tenantId, id, n, at(60_000)), false, T0);
      await store.addVersion(tenantId, id, (n) => version(tenantId, id, n, at(120_000)), false, T0);
      const mine = async (now: Date) =>
        (await store.listDueActivations(now)).filter((d) => d.identityId === id);
      expect(await mine(at(59_999))).toEqual([]);
      expect((await store.getVersion(tenantId, id, 2))?.activateAt).toEqual(at(60_000));
      expect(((await store.nextActivationAt()) ?? at(1e12)) <= at(60_000)).toBe(true);
      expect(await mine(at(120_000))).toEqual([
        { tenantId, identityId: id, version: 2, activateAt: at(60_000) },
        { tenantId, identityId: id, version: 3, activateAt: at(120_000) },
      ]);
      await store.activateVersion(tenantId, id, 2, at(60_000));
      expect((await store.getVersion(tenantId, id, 2))?.activateAt).toBeUndefined();
      expect(await store.clearScheduledActivation(tenantId, id, 3)).toBe(true);
      expect(await store.clearScheduledActivation(tenantId, id, 3)).toBe(false);
      expect(await mine(at(1e9))).toEqual([]);
    });

    test('notification settings round-trip, sealed secret included, and bump the revision', async () => {
      const revision = await store.getRevision();
      const secret = {
        ciphertext: randomBytes(40),
        iv: randomBytes(12),
        wrappedDek: randomBytes(60),
        kekId: 'local:kek-1',
      };
      await store.putNotificationSettings(tenantId, {
        tenantId,
        emails: ['a@b.example'],
        notifyMembers: false,
        webhookUrls: ['https://h.example/'],
        thresholdsDays: [30, 7],
        webhookSecret: secret,
        webhookSecretCreatedAt: T0,
        updatedAt: T0,
      });
      expect(await store.getRevision()).toBe(revision + 1);
      expect(await store.getNotificationSettings(tenantId)).toEqual({
        tenantId,
        emails: ['a@b.example'],
        notifyMembers: false,
        webhookUrls: ['https://h.example/'],
        thresholdsDays: [30, 7],
        webhookSecret: secret,
        webhookSecretCreatedAt: T0,
        updatedAt: T0,
      });
      await store.putNotificationSettings(tenantId, {
        tenantId,
        emails: [],
        notifyMembers: true,
        webhookUrls: [],
        thresholdsDays: [7],
        updatedAt: at(1),
      });
      expect((await store.getNotificationSettings(tenantId))?.webhookSecret).toBeUndefined();
    });

    test('the scheduler lock admits one holder at a time', async () => {
      const order: string[] = [];
      const first = store.withSchedulerLock(async () => {
        order.push('first');
        await new Promise((r) => setTimeout(r, 50));
        return 1;
      });
      expect(await first).toEqual({ ran: true, value: 1 });
      expect(await store.withSchedulerLock(async () => 2)).toEqual({ ran: true, value: 2 });
      expect(order).toEqual(['first']);
    });
  });
});

describe.skipIf(skipPostgres)('scheduler lock across processes sharing PostgreSQL', () => {
  const schema = `twoway_test_lock_${randomBytes(5).toString('hex')}`;
  const stores: Store[] = [];

  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });

  test('while one store holds it, another on the same schema skips; a store on another schema does not', async () => {
    const a = await openPostgresStore(postgresUrl, { schema });
    const b = await openPostgresStore(postgresUrl, { schema });
    const elsewhere = await openPostgresStore(postgresUrl, { schema: `${schema}_x` });
    stores.push(a, b, elsewhere);
    await a.migrate();
    await elsewhere.migrate();
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered: () => void = () => {};
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const holder = a.withSchedulerLock(async () => {
      entered();
      await held;
      return 'a';
    });
    await inside;
    expect(await b.withSchedulerLock(async () => 'b')).toEqual({ ran: false });
    expect(await elsewhere.withSchedulerLock(async () => 'x')).toEqual({ ran: true, value: 'x' });
    release();
    expect(await holder).toEqual({ ran: true, value: 'a' });
    // Released: the other process gets it now.
    expect(await b.withSchedulerLock(async () => 'b')).toEqual({ ran: true, value: 'b' });
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    await client.query(`drop schema if exists ${schema}_x cascade`);
    await client.end();
  });
});
