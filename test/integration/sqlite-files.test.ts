import { chmodSync, closeSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openBackends } from '../../src/main.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../fixtures/pki.js';

/** Permission bits of a file or folder, as `0o600` would be written. */
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('the SQLite data folder and files are private to the service user', () => {
  const files = tempDir('twoway-modes-');
  let umask: number;
  // The usual umask of a service: without care, files come out 0644 and folders 0755.
  beforeEach(() => {
    umask = process.umask(0o022);
  });
  afterEach(() => {
    process.umask(umask);
  });
  afterAll(() => files.cleanup());

  test('twoway creates the data folder 0700 and the database, its WAL and SHM, and the key file 0600', async () => {
    const dataDir = join(files.dir, 'fresh', 'data');
    const { store, kms } = await openBackends(loadConfig({ TWOWAY_DATA_DIR: dataDir }));
    try {
      await store.createTenant({ id: 'acme', name: 'Acme', createdAt: new Date() });
      expect(modeOf(join(files.dir, 'fresh'))).toBe(0o700);
      expect(modeOf(dataDir)).toBe(0o700);
      const made = readdirSync(dataDir).sort();
      expect(made).toEqual(['master.key', 'twoway.db', 'twoway.db-shm', 'twoway.db-wal']);
      for (const name of made) expect(modeOf(join(dataDir, name)), name).toBe(0o600);
    } finally {
      await store.close();
      await kms.close();
    }
  });

  test('a database file left 0644 (with its WAL and SHM) is narrowed to 0600 when opened', async () => {
    const file = join(files.dir, 'old.db');
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      closeSync(openSync(path, 'a', 0o644));
      chmodSync(path, 0o644);
    }
    const store = await openSqliteStore(file);
    try {
      await store.migrate();
      for (const path of [file, `${file}-wal`, `${file}-shm`]) expect(modeOf(path), path).toBe(0o600);
    } finally {
      await store.close();
    }
  });
});
