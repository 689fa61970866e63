/**
 * PostgreSQL change announcements: each committed write NOTIFYs its revision, in commit order; a
 * write that rolls back announces nothing; a listener never hears of a revision before it is
 * readable (the NOTIFY is delivered at commit).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { changeChannel } from '../../src/store/postgres-changes.js';
import { dropPostgresSchemas, postgresSkipped, postgresUrl } from '../helpers/databases.js';

const skipPostgres = await postgresSkipped();

describe.skipIf(skipPostgres)('PostgreSQL NOTIFY of store writes', () => {
  const schema = `twoway_test_notify_${randomBytes(5).toString('hex')}`;
  const stores: Store[] = [];
  afterAll(() => dropPostgresSchemas([schema], stores));

  test('committed writes announce their revision in order; a rolled-back write announces nothing', async () => {
    const store = await openPostgresStore(postgresUrl, { schema });
    stores.push(store);
    await store.migrate();
    const listener = new pg.Client({ connectionString: postgresUrl });
    await listener.connect();
    const heard: { announced: number; readable: number }[] = [];
    let resolveThree: () => void = () => {};
    const three = new Promise<void>((resolve) => {
      resolveThree = resolve;
    });
    listener.on('notification', (message) => {
      // Read through the store's own pool: the announced revision is already committed.
      void store.getRevision().then((readable) => {
        heard.push({ announced: Number(message.payload), readable });
        if (heard.length === 3) resolveThree();
      });
    });
    await listener.query(`LISTEN "${changeChannel(schema)}"`);
    try {
      const tenant = { id: 'acme', name: 'Acme', createdAt: new Date() };
      await store.createTenant(tenant);
      const first = await store.getRevision();
      await expect(store.createTenant(tenant)).rejects.toMatchObject({ code: 'tenant_exists' });
      await store.createTenant({ ...tenant, id: 'other' });
      await store.createTenant({ ...tenant, id: 'third' });
      await three;
      // A rolled-back write that announced would show as a repeated revision (its bump was undone).
      expect(heard.map((h) => h.announced)).toEqual([first, first + 1, first + 2]);
      for (const h of heard) expect(h.readable).toBeGreaterThanOrEqual(h.announced);
    } finally {
      await listener.end();
    }
  });

  test("watchRevisions reports another store's writes", async () => {
    const [writer, watcher] = [
      await openPostgresStore(postgresUrl, { schema }),
      await openPostgresStore(postgresUrl, { schema }),
    ];
    stores.push(writer, watcher);
    const seen: number[] = [];
    let resolveSeen: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      resolveSeen = resolve;
    });
    const watch = watcher.watchRevisions?.({
      onRevision: (revision) => {
        seen.push(revision);
        resolveSeen();
      },
    });
    try {
      // Until the session listens, writes go unheard: write until one is heard.
      while (seen.length === 0) {
        await writer.setMeta('probe', randomBytes(4));
        await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 50))]);
      }
      expect(seen.at(-1)).toBe(await writer.getRevision());
    } finally {
      await watch?.close();
    }
  });
});
