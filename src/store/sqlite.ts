import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import type { DialectSupport, DriverFailure } from './database.js';
import { createKyselyStore } from './kysely-store.js';
import type { Database as Tables } from './tables.js';
import type { Store } from './types.js';

/** How long a statement waits for another process's write lock before failing with `not_ready`. */
const BUSY_TIMEOUT_MS = 5_000;

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /**
   * Caps the database at this many pages (PRAGMA max_page_count, 4 KiB each): a write that needs
   * more fails with `storage_full`, exactly as on a full disk. Tests use it to fill a database
   * without filling a disk.
   */
  maxPageCount?: number;
}

/** Mode of the database file and of the WAL and shared-memory files SQLite makes next to it. */
const FILE_MODE = 0o600;
/** Mode of folders created for the database (the data folder). */
const DIR_MODE = 0o700;

/**
 * Opens (creating it and its parent folder if needed) the SQLite database at `file`, with WAL
 * journaling (readers never block the writer), `foreign_keys = ON` (SQLite leaves them off by
 * default) and a busy timeout of 5 s. `:memory:` gives a private in-memory database. Does not
 * migrate: call `hasData()` / `migrate()` next.
 *
 * The database holds sealed keys, API key hashes and every tenant's configuration: folders it
 * creates are 0700, and the file is created 0600 before SQLite opens it (SQLite would make it
 * 0644 under the usual umask). SQLite gives the `-wal` and `-shm` files the database file's mode;
 * a database file (or WAL/SHM) left readable by others by an older version is narrowed to 0600.
 * @throws Error when the file cannot be opened (permissions, not a database).
 */
export async function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Promise<Store> {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true, mode: DIR_MODE });
    closeSync(openSync(file, 'a', FILE_MODE));
  }
  const database = new Database(file);
  try {
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Safe with WAL: a power cut may lose the last commits but never corrupts the file.
    database.pragma('synchronous = NORMAL');
    if (options.maxPageCount !== undefined) {
      database.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxPageCount))}`);
    }
    if (file !== ':memory:') narrowModes(file);
  } catch (err) {
    database.close();
    throw err;
  }
  const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database }) });
  return createKyselyStore(db, sqliteSupport);
}

/**
 * Sets the database file and its WAL and shared-memory files (those that exist) to 0600 where they
 * are readable or writable by group or others. A file this process does not own (EPERM) is left as
 * its owner set it.
 */
function narrowModes(file: string): void {
  for (const path of [file, `${file}-wal`, `${file}-shm`]) {
    const mode = statSync(path, { throwIfNoEntry: false })?.mode;
    if (mode === undefined || (mode & 0o077) === 0) continue;
    try {
      chmodSync(path, FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    }
  }
}

const sqliteSupport: DialectSupport = {
  dialect: 'sqlite',
  async tableExists(db, table) {
    const { rows } = await sql<{ name: string }>`
      select name from sqlite_master where type = 'table' and name = ${table}`.execute(db);
    return rows.length > 0;
  },
  classifyError: classifySqliteError,
  // One process per database file (WAL serializes writers anyway): no one to skip for.
  async withSchedulerLock(_db, work) {
    return { ran: true, value: await work() };
  },
};

/** better-sqlite3 throws `SqliteError` with extended result codes (`SQLITE_CONSTRAINT_UNIQUE`). */
function classifySqliteError(err: unknown): DriverFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    // The message names the columns: "UNIQUE constraint failed: tenants.id".
    const table = /constraint failed: (\w+)\./.exec(err.message)?.[1];
    return { kind: 'unique', table };
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return { kind: 'foreign_key' };
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return { kind: 'unavailable' };
  // The disk is full, or the database reached its page limit (PRAGMA max_page_count).
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return { kind: 'full' };
  return undefined;
}
