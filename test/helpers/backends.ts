import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import { postgresAvailable, postgresUrl } from './databases.js';

/** A database Twoway can be started on: SQLite (default) or PostgreSQL in a schema of its own. */
export interface AppBackend {
  name: 'sqlite' | 'postgres';
  /** Environment for loadConfig; `{}` means the embedded SQLite default. */
  env(): Promise<Record<string, string>>;
  cleanup(): Promise<void>;
}

/**
 * SQLite always; PostgreSQL when reachable (in CI it must be: an unreachable PostgreSQL fails
 * there instead of skipping). Each PostgreSQL `env()` makes a fresh schema, dropped at cleanup. Call
 * it at the top of a test file: it registers that cleanup as the file's afterAll, which runs after
 * every describe block's afterAll (so after the Twoways on those schemas have closed).
 */
export async function appBackends(): Promise<AppBackend[]> {
  const list: AppBackend[] = [{ name: 'sqlite', env: async () => ({}), cleanup: async () => {} }];
  if (await postgresAvailable()) {
    const schemas: string[] = [];
    list.push({
      name: 'postgres',
      async env() {
        const schema = `tw_app_${randomBytes(6).toString('hex')}`;
        const client = new pg.Client(postgresUrl);
        await client.connect();
        await client.query(`CREATE SCHEMA ${schema}`);
        await client.end();
        schemas.push(schema);
        const url = new URL(postgresUrl);
        url.searchParams.set('options', `-c search_path=${schema}`);
        return { TWOWAY_DATABASE_URL: url.toString() };
      },
      async cleanup() {
        const client = new pg.Client(postgresUrl);
        await client.connect();
        for (const schema of schemas.splice(0)) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.end();
      },
    });
  } else if (process.env.CI) {
    throw new Error(
      'The test PostgreSQL (TWOWAY_TEST_POSTGRES_URL) is unreachable; CI must run every app test on it',
    );
  } else {
    console.warn('\n*** PostgreSQL unreachable: app tests run on SQLite only ***\n');
  }
  afterAll(async () => {
    for (const backend of list) await backend.cleanup();
  });
  return list;
}

/**
 * Everything a Twoway database holds, as text, for leak checks: on SQLite the database file and its
 * WAL as raw bytes (latin1 and hex, so any encoding of a key shows); on PostgreSQL every row of every
 * table in the schema as JSON (`row_to_json` renders bytea as \x-hex).
 */
export async function databaseText(
  backend: AppBackend['name'],
  dataDir: string,
  databaseUrl?: string,
): Promise<string> {
  if (backend === 'sqlite') {
    const parts: string[] = [];
    for (const file of readdirSync(dataDir).filter((f) => f.startsWith('twoway.db'))) {
      const bytes = readFileSync(join(dataDir, file));
      parts.push(bytes.toString('latin1'), bytes.toString('hex'));
    }
    return parts.join('\n');
  }
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    const tables = await client.query<{ tablename: string }>(
      'SELECT tablename FROM pg_tables WHERE schemaname = current_schema()',
    );
    const dumps: string[] = [];
    for (const { tablename } of tables.rows) {
      const rows = await client.query(`SELECT row_to_json(t)::text AS j FROM "${tablename}" t`);
      for (const row of rows.rows as { j: string }[]) dumps.push(row.j);
    }
    return dumps.join('\n');
  } finally {
    await client.end();
  }
}
