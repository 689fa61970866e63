/**
 * Backup and restore of the whole store as one portable snapshot (JSON lines, the same on SQLite and
 * PostgreSQL, so a backup of one restores into the other). The snapshot is what the database holds:
 * sealed keys (wrapped DEKs and ciphertexts), hashes of API keys, public certificates. The KEK is
 * never in it: a restored store opens only with the KEK (key file, TWOWAY_MASTER_KEY or token) that
 * sealed it.
 */
import { type Kysely, sql } from 'kysely';
import { AppError } from '../errors/app-error.js';
import { Aggregate } from './database.js';
import type { Database } from './tables.js';
import type { BackupStore, SnapshotHeader } from './types.js';

const FORMAT = 'twoway-backup';
const MIGRATION_TABLES = new Set(['kysely_migration', 'kysely_migration_lock']);
/** How a binary value is written in a JSON line. */
const BINARY = '$base64';

/** {@link BackupStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyBackupStore extends Aggregate implements BackupStore {
  /**
   * Writes a header line, one line per row (tables in creation order, so that a restore meets every
   * referenced row first) and an end line with the row count, all read in one transaction: one
   * REPEATABLE READ snapshot on PostgreSQL; on SQLite (WAL) the read transaction's snapshot, while
   * writers go on.
   */
  async exportSnapshot(write: (line: string) => Promise<void>): Promise<{ rows: number }> {
    const { db, dialect } = this.database;
    return this.database.read(async () => {
      let builder = db.transaction();
      if (dialect === 'postgres') builder = builder.setIsolationLevel('repeatable read');
      return builder.execute(async (trx) => {
        if (dialect === 'postgres') await sql`set transaction read only`.execute(trx);
        const tables = await tablesOf(trx, dialect);
        const migrations = await trx
          .selectFrom('kysely_migration' as never)
          .select(sql<string>`name`.as('name'))
          .execute();
        const header: SnapshotHeader = {
          format: FORMAT,
          version: 1,
          dialect,
          createdAt: new Date().toISOString(),
          migrations: (migrations as { name: string }[]).map((m) => m.name).sort(),
          tables,
        };
        await write(JSON.stringify(header));
        let rows = 0;
        for (const table of tables) {
          const all = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(trx);
          for (const row of all.rows) {
            await write(JSON.stringify({ table, row: encodeRow(row) }));
            rows += 1;
          }
        }
        await write(JSON.stringify({ end: true, rows }));
        return { rows };
      });
    });
  }

  /**
   * Loads a snapshot into this store, which must be migrated and hold no data: every table is
   * emptied (the revision row the migration made) and the rows are inserted, all in one
   * transaction, so that a failed restore leaves the store empty. PostgreSQL sequences are moved
   * past the restored values.
   * @throws AppError `bad_request` when the file is not a complete Twoway backup, or was made by a
   *   newer Twoway (a migration this one does not know)
   */
  async importSnapshot(lines: AsyncIterable<string>): Promise<{ rows: number }> {
    const { db, dialect } = this.database;
    const known = new Set(
      (await this.database.read(() =>
        db
          .selectFrom('kysely_migration' as never)
          .select(sql<string>`name`.as('name'))
          .execute(),
      )) as { name: string }[],
    );
    const knownNames = new Set([...known].map((m) => m.name));
    return this.database.append(async (trx) => {
      let header: SnapshotHeader | undefined;
      let rows = 0;
      let ended = false;
      for await (const line of lines) {
        if (line.trim() === '') continue;
        const parsed = parseLine(line);
        if (header === undefined) {
          header = checkHeader(parsed, knownNames);
          for (const table of [...header.tables].reverse())
            await sql`delete from ${sql.table(table)}`.execute(trx);
          continue;
        }
        if (parsed.end === true) {
          if (parsed.rows !== rows) throw badBackup('the row count at its end does not match');
          ended = true;
          break;
        }
        const { table, row } = parsed as { table?: unknown; row?: unknown };
        if (
          typeof table !== 'string' ||
          !header.tables.includes(table) ||
          typeof row !== 'object' ||
          row === null
        )
          throw badBackup('a line is not a row of a known table');
        await trx
          .insertInto(table as keyof Database)
          .values(decodeRow(row as Record<string, unknown>) as never)
          .execute();
        rows += 1;
      }
      if (!ended) throw badBackup('it ends before its last line (truncated?)');
      if (dialect === 'postgres') await resetSequences(trx);
      return { rows };
    });
  }
}

/** Twoway's tables in creation order (the order every foreign key allows). */
async function tablesOf(db: Kysely<Database>, dialect: 'sqlite' | 'postgres'): Promise<string[]> {
  const { rows } =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`
          select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by rowid`.execute(
          db,
        )
      : await sql<{ name: string }>`
          select relname as name from pg_class
          where relnamespace = current_schema()::regnamespace and relkind = 'r' order by oid`.execute(db);
  return rows.map((r) => r.name).filter((name) => !MIGRATION_TABLES.has(name));
}

/** Sets each serial column's sequence of the current schema to the largest restored value. */
async function resetSequences(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema() and column_default like 'nextval(%'`.execute(db);
  for (const { table_name, column_name } of rows) {
    await sql`select setval(pg_get_serial_sequence(${table_name}, ${column_name}),
      coalesce((select max(${sql.ref(column_name)}) from ${sql.table(table_name)}), 0) + 1, false)`.execute(
      db,
    );
  }
}

function encodeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] = value instanceof Uint8Array ? { [BINARY]: Buffer.from(value).toString('base64') } : value;
  }
  return out;
}

function decodeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    const binary =
      value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[BINARY] : undefined;
    out[key] = typeof binary === 'string' ? Buffer.from(binary, 'base64') : value;
  }
  return out;
}

function parseLine(line: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(line);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw badBackup('a line is not JSON');
}

function checkHeader(value: Record<string, unknown>, knownMigrations: Set<string>): SnapshotHeader {
  if (
    value.format !== FORMAT ||
    value.version !== 1 ||
    !Array.isArray(value.tables) ||
    !Array.isArray(value.migrations)
  )
    throw badBackup('it does not start with a Twoway backup header');
  const unknown = (value.migrations as unknown[]).filter(
    (m) => typeof m !== 'string' || !knownMigrations.has(m),
  );
  if (unknown.length > 0) throw badBackup('it was made by a newer Twoway (unknown migrations)');
  return value as unknown as SnapshotHeader;
}

function badBackup(why: string): AppError {
  return new AppError('backup_invalid', `The file is not a usable Twoway backup: ${why}.`);
}
