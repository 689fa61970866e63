import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { AppError } from '../../src/errors/app-error.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../fixtures/pki.js';

describe('a full SQLite database (PRAGMA max_page_count: a real SQLITE_FULL without filling a disk)', () => {
  const files = tempDir('twoway-full-');
  afterAll(() => files.cleanup());

  test('writes fail with 503 storage_full carrying the driver cause, ping reports it, and both recover once there is room', async () => {
    const file = join(files.dir, 'twoway.db');
    // Room for the schema and a little more: 1 MiB in 4 KiB pages.
    const store = await openSqliteStore(file, { maxPageCount: 256 });
    try {
      await store.migrate();
      await store.createTenant({ id: 'acme', name: 'Acme', createdAt: new Date() });
      await store.ping();

      let failure: unknown;
      for (let i = 0; i < 64 && failure === undefined; i++) {
        await store.setMeta(`filler-${i}`, randomBytes(32 * 1024)).catch((err: unknown) => {
          failure = err;
        });
      }
      // Not `internal_error` with "cannot rollback - no transaction is active" (SQLite had already
      // rolled the transaction back): the cause is SQLite's own error.
      expect(failure).toBeInstanceOf(AppError);
      expect(failure).toMatchObject({ code: 'storage_full', status: 503 });
      expect((failure as AppError).cause).toMatchObject({ code: 'SQLITE_FULL' });
      // A write transaction of several statements fails the same way and leaves nothing behind.
      const tenant = { id: 'too-much', name: 'x'.repeat(200_000), createdAt: new Date() };
      await expect(store.createTenant(tenant)).rejects.toMatchObject({ code: 'storage_full' });
      expect(await store.getTenant('too-much')).toBeUndefined();
      // Readiness says so (a 64 KiB probe write still fails), while reads keep working.
      await expect(store.ping()).rejects.toMatchObject({ code: 'storage_full' });
      await expect(store.ping()).rejects.toMatchObject({ code: 'storage_full' });
      expect((await store.getTenant('acme'))?.name).toBe('Acme');

      // The operator makes room (here: another connection deletes the filler).
      const other = new Database(file);
      other.prepare("delete from meta where key like 'filler-%'").run();
      other.close();
      await store.ping();
      await store.setMeta('after', randomBytes(1024));
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
