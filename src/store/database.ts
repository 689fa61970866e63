/**
 * The plumbing every aggregate of the store runs on: reads, write transactions that bump the
 * revision, bookkeeping transactions that do not, driver-error translation, and the database as a
 * whole (has it data, migrate, ping, close). The aggregates (tenants.ts, identities.ts, ...) hold
 * the queries; sqlite.ts and postgres.ts provide the {@link DialectSupport}.
 */
import { randomBytes } from 'node:crypto';
import {
  type ControlledTransaction,
  type Kysely,
  Migrator,
  type Selectable,
  type SelectQueryBuilder,
  sql,
  type Transaction,
  type UpdateQueryBuilder,
  type UpdateResult,
} from 'kysely';
import { AppError, toAppError } from '../errors/app-error.js';
import { migrationProvider, type StoreDialect } from './migrations/index.js';
import type { Database } from './tables.js';

/** What a driver error means to the store; anything unclassified becomes `internal_error`. */
export type DriverFailure =
  /** A unique or primary key constraint; `table` when the driver names it. */
  | { kind: 'unique'; table: string | undefined }
  /** A foreign key constraint: the referenced tenant or identity does not exist. */
  | { kind: 'foreign_key' }
  /** The database cannot be reached, its session was lost, or it is busy beyond a timeout. */
  | { kind: 'unavailable' }
  /** The disk or the database is full (SQLite `SQLITE_FULL`, `ENOSPC`; PostgreSQL `53100`). */
  | { kind: 'full' };

/** What a scheduler lock attempt returns: the work's value, or `ran: false` when skipped. */
export type LockOutcome<T> = { ran: true; value: T } | { ran: false };

/**
 * The few things that differ between SQLite and PostgreSQL. sqlite.ts and postgres.ts provide them;
 * every query lives in the aggregates, written once.
 */
export interface DialectSupport {
  readonly dialect: StoreDialect;
  /** True when `table` exists where unqualified names resolve (SQLite `main`, the PostgreSQL search_path). */
  tableExists(db: Kysely<Database>, table: string): Promise<boolean>;
  /** Recognises the driver's constraint and connection errors; undefined for anything else. */
  classifyError(err: unknown): DriverFailure | undefined;
  /**
   * Runs `work` only if no other process holds the lifecycle scheduler's lock. `guard` translates
   * driver errors of the lock's own statements; errors of `work` pass through untouched.
   */
  withSchedulerLock<T>(
    db: Kysely<Database>,
    work: () => Promise<T>,
    guard: <U>(statement: () => Promise<U>) => Promise<U>,
  ): Promise<LockOutcome<T>>;
  /** The PostgreSQL schema of Kysely's migration bookkeeping tables; undefined on SQLite. */
  readonly migrationTableSchema?: string | undefined;
}

/** The tables whose rows belong to one tenant (a `tenant_id` column). */
export type TenantTable = {
  [K in keyof Database]: Database[K] extends { tenant_id: string } ? K : never;
}[keyof Database];

/** Safe `detail` for a unique violation, by table; never echoes the offending value. */
const duplicateDetail: Record<string, string> = {
  api_keys: 'An API key with this id or token already exists.',
  client_certificates: 'This certificate is already registered in this tenant.',
  identities: 'An identity with this id already exists.',
  identity_versions: 'This identity version already exists.',
  mappings: 'A mapping with this id already exists.',
  roles: 'A role with this name already exists.',
  members: 'A member with this id already exists.',
};

/** The meta key of the write that proves a full store has room again (see {@link StoreDatabase.ping}). */
const STORAGE_PROBE_KEY = 'storage_probe';
/**
 * Size of that write: several pages (SQLite's are 4 KiB), so that a store that can only rewrite
 * pages it already has does not count as having room again. Random, so compression cannot shrink it.
 */
const STORAGE_PROBE_BYTES = 64 * 1024;

/** Thrown inside a write transaction to roll it back (it changed nothing) and return `value`. */
export class Unchanged extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super('nothing changed');
    this.value = value;
  }
}

/**
 * One database as the aggregates use it, over Kysely: SQLite (better-sqlite3) or PostgreSQL (pg).
 *
 * - Tenant isolation is in the SQL: every tenant-owned query has `where tenant_id = ?` with the
 *   `tenantId` argument, and rows are written under the `tenantId` argument; a `tenantId` field inside
 *   a domain object passed in is ignored. Another tenant's object reads as undefined / false, and a
 *   write aimed at it changes nothing.
 * - Every {@link write} runs in a transaction that first bumps the revision counter. That first
 *   statement takes the write lock up front (SQLite RESERVED lock, a PostgreSQL row lock), so write
 *   transactions are serialized: `addVersion`'s max(version)+1 cannot race, and there is no lock-order
 *   deadlock. A write that matches no row is rolled back ({@link Unchanged}), so the revision moves
 *   only when data changed.
 * - Errors: unique violation on tenants → `tenant_exists`; other unique violations → `bad_request`;
 *   foreign key violations → `not_found`; unreachable database, lost session or a timeout →
 *   `not_ready` (503); a full disk or database → `storage_full` (503); anything else →
 *   `internal_error`. The driver error is always the `cause` (logged, never in `detail`), also when
 *   the rollback after it fails too (SQLite rolls back by itself after `SQLITE_FULL`, and the
 *   rollback then reports "no transaction is active").
 * - After a `storage_full`, {@link ping} fails with `storage_full` until a write succeeds (its own
 *   probe write, or any other).
 */
export class StoreDatabase {
  readonly db: Kysely<Database>;
  readonly support: DialectSupport;
  #closed: Promise<void> | undefined;
  /** Set by a write that failed for lack of space; cleared by the next write that commits. */
  #full = false;

  constructor(db: Kysely<Database>, support: DialectSupport) {
    this.db = db;
    this.support = support;
  }

  get dialect(): StoreDialect {
    return this.support.dialect;
  }

  /** Runs `work` (queries on {@link db}), translating driver errors. */
  async read<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.translate(err);
    }
  }

  /**
   * Every column of the rows of `table` that belong to `tenantId`: where each tenant-scoped read
   * starts, so that the tenant condition is written once.
   */
  ofTenant<T extends TenantTable>(
    table: T,
    tenantId: string,
  ): SelectQueryBuilder<Database, T, Selectable<Database[T]>> {
    // Kysely cannot resolve `tenant_id` on a generic table; the union of tenant tables has it, and
    // the SQL is the same whichever one `table` is.
    const query = this.db
      .selectFrom(table as TenantTable)
      .selectAll()
      .where('tenant_id', '=', tenantId);
    return query as unknown as SelectQueryBuilder<Database, T, Selectable<Database[T]>>;
  }

  /**
   * An UPDATE of the rows of `table` that belong to `tenantId`, inside the caller's write
   * transaction; run it with {@link changedAny}.
   */
  updateOfTenant<T extends TenantTable>(
    trx: Transaction<Database>,
    table: T,
    tenantId: string,
  ): UpdateQueryBuilder<Database, T, T, UpdateResult> {
    // As in ofTenant: the same SQL for whichever tenant table `table` is.
    const query = trx.updateTable(table as TenantTable).where('tenant_id', '=', tenantId);
    return query as unknown as UpdateQueryBuilder<Database, T, T, UpdateResult>;
  }

  /** Runs `query` and maps its first row; undefined when there is none. Errors are translated. */
  async first<R, T>(
    query: { executeTakeFirst(): Promise<R | undefined> },
    map: (row: R) => T,
  ): Promise<T | undefined> {
    const row = await this.read(() => query.executeTakeFirst());
    return row === undefined ? undefined : map(row);
  }

  /** Runs `query` and maps every row. Errors are translated. */
  async all<R, T>(query: { execute(): Promise<R[]> }, map: (row: R) => T): Promise<T[]> {
    const rows = await this.read(() => query.execute());
    return rows.map((row) => map(row));
  }

  /** Runs `work` in a transaction that first bumps the revision (see the class comment). */
  write<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#transaction(async (trx) => {
      await trx
        .updateTable('revision')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .where('id', '=', 1)
        .execute();
      return work(trx);
    });
  }

  /** Runs `work` in a transaction that does not bump the revision (lifecycle bookkeeping only). */
  append<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#transaction(work);
  }

  /** The revision this write transaction set (it bumped the counter first, see {@link write}). */
  async currentRevision(trx: Transaction<Database>): Promise<number> {
    const row = await trx
      .selectFrom('revision')
      .select('value')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(row.value);
  }

  /** 0 on a fresh database; +1 per committed write transaction that changed data. */
  async readRevision(): Promise<number> {
    const row = await this.read(() =>
      this.db.selectFrom('revision').select('value').where('id', '=', 1).executeTakeFirst(),
    );
    return row === undefined ? 0 : Number(row.value);
  }

  /** True for a unique violation, raw or already translated (the driver error is then the cause). */
  isUniqueViolation(err: unknown): boolean {
    const cause = err instanceof AppError ? err.cause : err;
    return this.support.classifyError(cause)?.kind === 'unique';
  }

  /**
   * True when the Twoway tables exist and `tenants` or `meta` holds a row. Safe before migrate():
   * a missing table counts as empty.
   */
  async hasData(): Promise<boolean> {
    return this.read(async () => {
      if (await this.support.tableExists(this.db, 'tenants')) {
        const row = await this.db.selectFrom('tenants').select('id').limit(1).executeTakeFirst();
        if (row) return true;
      }
      if (await this.support.tableExists(this.db, 'meta')) {
        const row = await this.db.selectFrom('meta').select('key').limit(1).executeTakeFirst();
        if (row) return true;
      }
      return false;
    });
  }

  /**
   * Applies pending migrations (see migrations/); a no-op when the schema is current. On PostgreSQL
   * concurrent callers wait on Kysely's advisory lock.
   * @throws AppError `internal_error` (cause: the failed migration's error), e.g. when the database
   *   was migrated by a newer Twoway.
   */
  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.db,
      provider: migrationProvider(this.dialect),
      migrationTableSchema: this.support.migrationTableSchema,
    });
    let { error } = await migrator.migrateToLatest();
    // Kysely's Migrator lists the tables of every schema in the database to find its own; a schema
    // dropped by someone else during that listing fails it with 3F000 (invalid_schema_name). The
    // migration itself is idempotent and locked, so it is simply run again.
    for (let attempt = 1; attempt < 4 && isSchemaVanished(error); attempt += 1) {
      ({ error } = await migrator.migrateToLatest());
    }
    if (error !== undefined) {
      throw new AppError('internal_error', 'Database migration failed.', { cause: error });
    }
  }

  /**
   * Checks that the database answers (`select 1`) and, after a write failed with `storage_full`,
   * that it has room again: a 64 KiB probe row is written and removed (a write that commits clears
   * the state, so /readyz recovers without waiting for client traffic).
   * @throws AppError `not_ready` when the database does not answer; `storage_full` while a probe
   *   write still fails for lack of space.
   */
  async ping(): Promise<void> {
    await this.read(() => sql`select 1`.execute(this.db));
    if (!this.#full) return;
    const value = randomBytes(STORAGE_PROBE_BYTES);
    await this.append((trx) =>
      trx
        .insertInto('meta')
        .values({ key: STORAGE_PROBE_KEY, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute(),
    );
    await this.append((trx) => trx.deleteFrom('meta').where('key', '=', STORAGE_PROBE_KEY).execute());
  }

  /** Closes the connection (SQLite) or pool (PostgreSQL); later calls return the same promise. */
  close(): Promise<void> {
    this.#closed ??= this.db.destroy();
    return this.#closed;
  }

  /**
   * Runs `work` in a transaction. On failure it rolls back and throws the first error (translated):
   * a rollback that fails too (SQLite already rolled back after `SQLITE_FULL`; the session is gone)
   * must not replace the cause.
   */
  async #transaction<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    let trx: ControlledTransaction<Database> | undefined;
    try {
      trx = await this.db.startTransaction().execute();
      const value = await work(trx);
      await trx.commit().execute();
      this.#full = false;
      return value;
    } catch (err) {
      if (trx !== undefined && !trx.isCommitted)
        await trx
          .rollback()
          .execute()
          .catch(() => undefined);
      if (err instanceof Unchanged) return err.value as T;
      throw this.translate(err);
    }
  }

  /** The AppError a failure of a store statement becomes (see the class comment). */
  translate(err: unknown): AppError {
    if (err instanceof AppError) return err;
    const failure = this.support.classifyError(err);
    switch (failure?.kind) {
      case 'unique':
        if (failure.table === 'tenants') {
          return new AppError('tenant_exists', 'A tenant with this id already exists.', { cause: err });
        }
        return new AppError(
          'bad_request',
          duplicateDetail[failure.table ?? ''] ?? 'An object with the same key already exists.',
          { cause: err },
        );
      case 'foreign_key':
        return new AppError('not_found', 'The tenant or identity it refers to does not exist.', {
          cause: err,
        });
      case 'unavailable':
        return new AppError('not_ready', 'The database is not reachable.', { cause: err });
      case 'full':
        this.#full = true;
        return new AppError('storage_full', 'The database has no room for this change.', { cause: err });
      default:
        return toAppError(err);
    }
  }
}

/** The base of the aggregate classes: each runs its queries on the one shared {@link StoreDatabase}. */
export abstract class Aggregate {
  protected readonly database: StoreDatabase;

  constructor(database: StoreDatabase) {
    this.database = database;
  }
}

/**
 * Runs an UPDATE inside a transaction (whose end translates errors); true when it changed a row.
 */
export async function changedAny(update: { executeTakeFirst(): Promise<UpdateResult> }): Promise<boolean> {
  const result = await update.executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

/** True for PostgreSQL's `invalid_schema_name` (3F000): a schema vanished while it was being read. */
function isSchemaVanished(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '3F000';
}
