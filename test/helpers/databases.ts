/**
 * Store backends for integration suites: every store suite runs on SQLite and on PostgreSQL.
 *
 * SQLite gets a fresh file in a temp folder per `open()`; PostgreSQL gets a fresh random schema per
 * `open()` in the database at `TWOWAY_TEST_POSTGRES_URL` (default
 * `postgres://postgres@127.0.0.1:5432/test`). `cleanup()` closes every store the backend opened and
 * removes the folder / drops the schemas.
 *
 * ```ts
 * const skipPostgres = await postgresSkipped();
 * describe.each(storeBackends())('... on $name', (backend) => {
 *   describe.skipIf(backend.name === 'postgres' && skipPostgres)('', () => { ... });
 * });
 * ```
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { Store } from '../../src/store/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

/** The PostgreSQL the suites use. */
export const postgresUrl = process.env.TWOWAY_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One database engine, as the store suites see it. */
export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A store on a fresh, empty database; migrated unless `migrate: false`. */
  open(options?: { migrate?: boolean }): Promise<Store>;
  /** Closes every store this backend opened and deletes their databases. Call in afterAll. */
  cleanup(): Promise<void>;
}

/** Fresh SQLite and PostgreSQL backends (nothing is opened until `open()`). */
export function storeBackends(): StoreBackend[] {
  return [sqliteBackend(), postgresBackend()];
}

function sqliteBackend(): StoreBackend {
  let folder: string | undefined;
  const stores: Store[] = [];
  return {
    name: 'sqlite',
    async open(options) {
      folder ??= mkdtempSync(join(tmpdir(), 'twoway-store-'));
      const store = await openSqliteStore(join(folder, `db-${stores.length}`, 'twoway.db'));
      stores.push(store);
      if (options?.migrate !== false) await store.migrate();
      return store;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
      folder = undefined;
    },
  };
}

function postgresBackend(): StoreBackend {
  const schemas: string[] = [];
  const stores: Store[] = [];
  return {
    name: 'postgres',
    async open(options) {
      if (!(await postgresAvailable())) {
        throw new Error(`PostgreSQL at ${redact(postgresUrl)} is unreachable (CI requires it)`);
      }
      const schema = `twoway_test_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      const store = await openPostgresStore(postgresUrl, { schema });
      stores.push(store);
      if (options?.migrate !== false) await store.migrate();
      return store;
    },
    async cleanup() {
      await Promise.all(stores.splice(0).map((s) => s.close()));
      await dropPostgresSchemas(schemas.splice(0));
    },
  };
}

/** Closes `stores`, then drops `schemas` (with everything in them) from the test PostgreSQL. */
export async function dropPostgresSchemas(
  schemas: readonly string[],
  stores: readonly Store[] = [],
): Promise<void> {
  await Promise.all(stores.map((s) => s.close()));
  if (schemas.length === 0) return;
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    for (const schema of schemas) await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

let availability: Promise<boolean> | undefined;

/** True when the test PostgreSQL answers `select 1` within 3 s (checked once per test file). */
export function postgresAvailable(): Promise<boolean> {
  availability ??= (async () => {
    const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 3_000 });
    // A refused connection also emits 'error'; without a listener it would crash the worker.
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return availability;
}

/**
 * Whether to skip the PostgreSQL case: true (with a loud warning) when PostgreSQL is unreachable on
 * a developer machine; always false when `CI` is set, so that there the suite fails instead of
 * silently testing SQLite alone.
 */
export async function postgresSkipped(): Promise<boolean> {
  if (await postgresAvailable()) return false;
  if (process.env.CI) return false;
  console.warn(
    `\n!!! PostgreSQL at ${redact(postgresUrl)} is unreachable: SKIPPING the PostgreSQL store tests.\n` +
      '!!! Start one (or set TWOWAY_TEST_POSTGRES_URL) to run them; in CI this fails the suite.\n',
  );
  return true;
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
