/**
 * The store's one entry point: code outside store/ imports the store interfaces and domain types
 * (types.ts) and {@link openStore} from here, never from the files behind it. Only tests open a
 * backend (sqlite.ts, postgres.ts) directly, to pick its file or schema.
 */
import { join } from 'node:path';
import type { Store } from './types.js';

export type * from './types.js';

/** Timeouts of the PostgreSQL pool (see postgres.ts); SQLite has its own busy timeout. */
export interface StoreTimeouts {
  /** New session, and the wait for a free pooled one (ms). TWOWAY_DATABASE_CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  /** One statement, lock waits included (ms). TWOWAY_DATABASE_STATEMENT_TIMEOUT_MS. */
  statementTimeoutMs?: number;
}

/**
 * Opens the store the deployment asks for: PostgreSQL when `databaseUrl` is a `postgres://` or
 * `postgresql://` URL (with `timeouts`), otherwise (no URL) the embedded SQLite file
 * `<dataDir>/twoway.db`. The backend
 * module is loaded on demand, so a SQLite deployment never loads pg and vice versa. Does not migrate.
 * @throws Error for any other URL scheme (the message names the scheme only, never the URL, which
 *   may hold a password); the backend's error when the database cannot be opened.
 */
export async function openStore(
  databaseUrl: string | undefined,
  dataDir: string,
  timeouts: StoreTimeouts = {},
): Promise<Store> {
  if (databaseUrl === undefined || databaseUrl === '') {
    const { openSqliteStore } = await import('./sqlite.js');
    return openSqliteStore(join(dataDir, 'twoway.db'));
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme === 'postgres' || scheme === 'postgresql') {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(databaseUrl, timeouts);
  }
  throw new Error(
    `Unsupported database URL scheme ${scheme === undefined ? '(none)' : `"${scheme}:"`}: use postgres:// or ` +
      'postgresql://, or leave the database URL unset for SQLite in the data directory',
  );
}
