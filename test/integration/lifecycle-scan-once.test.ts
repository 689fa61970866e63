import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, test } from 'vitest';
import type { DeliveryWorker } from '../../src/lifecycle/deliveries.js';
import type { AuditService } from '../../src/lifecycle/index.js';
import { createLifecycleMetrics } from '../../src/lifecycle/metrics.js';
import { ExpiryScanner } from '../../src/lifecycle/scanner.js';
import { LifecycleScheduler } from '../../src/lifecycle/scheduler.js';
import type { NotificationSettingsService } from '../../src/lifecycle/settings.js';
import { ChangeBus } from '../../src/shared/changes.js';
import { everyItem } from '../../src/shared/paging.js';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { dropPostgresSchemas, postgresSkipped, postgresUrl } from '../helpers/databases.js';
import { ManualClock } from '../helpers/lifecycle.js';

const skipPostgres = await postgresSkipped();
const INTERVAL_MS = 5_000;

/** Three stores on one database: what three `twoway serve` processes open. */
interface SharedDatabase {
  name: 'sqlite' | 'postgres';
  open(): Promise<Store[]>;
  cleanup(): Promise<void>;
}

function sqliteFile(): SharedDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'twoway-scan-once-'));
  const stores: Store[] = [];
  return {
    name: 'sqlite',
    async open() {
      for (let i = 0; i < 3; i++) stores.push(await openSqliteStore(join(dir, 'twoway.db')));
      await stores[0]?.migrate();
      return stores;
    },
    async cleanup() {
      await Promise.all(stores.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresSchema(): SharedDatabase {
  const schema = `twoway_test_scan_${randomBytes(5).toString('hex')}`;
  const stores: Store[] = [];
  return {
    name: 'postgres',
    async open() {
      for (let i = 0; i < 3; i++) stores.push(await openPostgresStore(postgresUrl, { schema }));
      await stores[0]?.migrate();
      return stores;
    },
    async cleanup() {
      if (stores.length > 0) await dropPostgresSchemas([schema], stores);
    },
  };
}

/**
 * The scheduler of one process over `store`, with a real scanner whose certificate source (one
 * identity, far from expiry) counts its reads; its gauges go to `registry`.
 */
function schedulerOf(
  store: Store,
  clock: ManualClock,
  reads: { count: number },
  registry: Registry,
): LifecycleScheduler {
  const logger = pino({ level: 'silent' });
  const scanner = new ExpiryScanner({
    store,
    tenants: { listTenants: () => everyItem((request) => store.listTenants(request)) },
    sources: [
      {
        objectType: 'identity',
        list: async (tenantId: string) => {
          reads.count += 1;
          return [
            {
              tenantId,
              objectType: 'identity',
              objectId: 'idn_1',
              objectVersion: '1',
              name: 'billing',
              subject: 'CN=billing',
              fingerprintSha256: 'ab'.repeat(32),
              notAfter: new Date(Date.UTC(2030, 0, 1)),
            },
          ];
        },
      },
    ],
    settings: {
      settings: async (tenantId: string) => ({ tenantId, emails: [], webhookUrls: [], thresholdsDays: [7] }),
    } as unknown as Pick<NotificationSettingsService, 'settings'>,
    metrics: createLifecycleMetrics(registry),
    clock,
    emailEnabled: false,
    logger,
  });
  return new LifecycleScheduler({
    store,
    identities: {
      activateVersion: async () => Promise.reject(new Error('no activation is due')),
      get: async () => Promise.reject(new Error('no activation is due')),
    },
    scanner,
    // Deliveries and audit are not part of this: nothing is due, nothing is audited.
    deliveries: { processDue: async () => 0 } as unknown as DeliveryWorker,
    audit: {} as AuditService,
    changes: new ChangeBus(),
    clock,
    scanIntervalMs: INTERVAL_MS,
    logger,
  });
}

describe.each([sqliteFile(), postgresSchema()])(
  'one expiry scan per interval across processes on $name',
  (database) => {
    afterAll(() => database.cleanup());

    test.skipIf(database.name === 'postgres' && skipPostgres)(
      'three schedulers on one database, woken every second for 31 s, run 7 full scans between them',
      async () => {
        const stores = await database.open();
        await stores[0]?.createTenant({ id: 'acme', name: 'Acme', createdAt: new Date() });
        const clock = new ManualClock(Date.UTC(2025, 0, 1));
        const reads = { count: 0 };
        const registries = stores.map(() => new Registry());
        const schedulers = stores.map((store, i) =>
          schedulerOf(store, clock, reads, registries[i] as Registry),
        );
        /** Which processes export the not-after gauge of the identity. */
        const exporting = async () => {
          const texts = await Promise.all(registries.map((r) => r.metrics()));
          return texts.map((text) => text.includes('twoway_certificate_not_after_seconds{'));
        };
        // PostgreSQL: the three wake together, as three processes would (the scheduler lock and the
        // claim decide). SQLite: one after the other, as three processes would queue on the file's
        // write lock; three connections in one thread would instead stall in each other's busy wait.
        const tickAll = async () => {
          if (database.name === 'postgres') return Promise.all(schedulers.map((s) => s.runDue()));
          const ticks = [];
          for (const s of schedulers) ticks.push(await s.runDue());
          return ticks;
        };
        const scannedAt: number[] = [];
        let skipped = 0;
        for (let second = 0; second <= 30; second++) {
          const ticks = await tickAll();
          for (const tick of ticks) {
            if (tick.scanned) scannedAt.push(second);
            // Found the scan done, or (PostgreSQL, all three at once) found the lock taken.
            if (tick.scanSkipped || !tick.ran) skipped += 1;
          }
          clock.advance(1_000);
        }
        expect(scannedAt).toEqual([0, 5, 10, 15, 20, 25, 30]);
        // One tenant, one source: one read per scan, none from the processes that skipped.
        expect(reads.count).toBe(7);
        expect(skipped).toBeGreaterThan(0);
        // Only the process that ran the latest scan exports its figures; the others drop theirs when
        // they find the scan done (a process that found the scheduler lock taken learns it on its
        // next tick, which one after the other gets the lock).
        for (const s of schedulers) await s.runDue();
        expect((await exporting()).filter(Boolean)).toHaveLength(1);

        // runOnce still scans on demand (and counts as the interval's scan for the others).
        expect((await schedulers[1]?.runOnce())?.scanned).toBe(true);
        clock.advance(INTERVAL_MS - 1);
        const after = await tickAll();
        expect(after.filter((t) => t.scanned)).toEqual([]);
        await Promise.all(schedulers.map((s) => s.stop()));
      },
    );
  },
);
