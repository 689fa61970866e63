import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, sql } from 'kysely';
import pg from 'pg';
import type { DialectSupport, DriverFailure } from './database.js';
import { createKyselyStore } from './kysely-store.js';
import type { Database } from './tables.js';
import type { Store } from './types.js';

/** OID of PostgreSQL `int8` (bigint). */
const INT8_OID = 20;

/** A schema name we can put in a connection option unquoted (folded to lowercase by PostgreSQL anyway). */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Default of {@link PostgresStoreOptions.connectTimeoutMs} (TWOWAY_DATABASE_CONNECT_TIMEOUT_MS). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default of {@link PostgresStoreOptions.statementTimeoutMs} (TWOWAY_DATABASE_STATEMENT_TIMEOUT_MS). */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
/**
 * How much longer than the statement timeout the client waits for an answer before giving up on
 * the session: the server's own cancellation (57014) normally comes first; this catches a server
 * (or a network path) that went silent mid-session.
 */
const READ_TIMEOUT_MARGIN_MS = 1_000;

/** Options of {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * Keep every table in this schema (created if missing) instead of the server's default search_path.
   * Lowercase letters, digits and `_`, at most 63 characters. Tests use a random one per run.
   */
  schema?: string;
  /**
   * Longest wait (ms) for a new session (TCP, TLS, startup) and for a free pooled one when all are
   * busy: pg-pool bounds both with one limit. Default 5000.
   */
  connectTimeoutMs?: number;
  /**
   * Longest run (ms) of one statement, lock waits included: the server cancels it
   * (`statement_timeout`, sent as a startup parameter so it applies from the first query, migrations
   * included). The client gives up on a session that has not answered 1 s after that and discards
   * it. Default 5000.
   */
  statementTimeoutMs?: number;
}

/**
 * Opens a pg `Pool` on `url` (`postgres://user:password@host:5432/db`, pg's connection string
 * syntax including `?sslmode=`). With `options.schema`, creates that schema if missing and sets
 * `search_path` for every pooled connection at connect time. Checks the connection once; does not
 * migrate: call `hasData()` / `migrate()` next.
 *
 * Faults never take the process down and never hang a request beyond the timeouts: every client has
 * an 'error' listener for its whole life (pg-pool listens only while a client is idle, so a session
 * terminated while checked out, by a fast shutdown, a failover or `pg_terminate_backend`, would
 * otherwise end the process with an unhandled 'error' event); the failure reaches the statement
 * that was using the session (`not_ready`, 503) and the session is dropped from the pool.
 * @throws Error for an invalid schema name; the driver's error when the server cannot be reached
 *   within the connect timeout (its message never contains the password).
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const { schema } = options;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new Error(
      `Invalid PostgreSQL schema name "${schema}": use [a-z_][a-z0-9_]*, at most 63 characters`,
    );
  }
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: url,
    // A startup parameter rather than a `SET` on connect: no query can run before it applies.
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
    // Names Twoway's sessions in pg_stat_activity (for pg_terminate_backend, lock hunting) unless
    // the URL sets `application_name`.
    fallback_application_name: 'twoway',
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + READ_TIMEOUT_MARGIN_MS,
    // Instants are int8 milliseconds; they fit a JS number exactly (up to 2^53), as do counts.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits 'error' on the pool; unhandled it would crash the
  // process. The pool drops that client and the next query reconnects; ping() reports the outage.
  pool.on('error', () => {});
  // A checked-out client has no pool listener (see the function comment). Its error also fails the
  // statement it was running, or the next one ("not queryable"); pg-pool then drops it on release.
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: discardingTimedOut(pool) }) });
  try {
    if (schema !== undefined) await createSchema(db, schema);
    // Kysely's Migrator must be told where its own tables live: without a schema it would find a
    // `kysely_migration` table in any schema of the database and skip creating ours.
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    const migrationTableSchema = rows[0]?.schema ?? undefined;
    return createKyselyStore(db, postgresSupport(migrationTableSchema));
  } catch (err) {
    await db.destroy();
    throw err;
  }
}

/**
 * The pool as Kysely uses it, except that a client whose statement got no answer within
 * `query_timeout` is released with that error, so pg-pool drops it: pg would otherwise hand the
 * session out again with the unanswered statement still ahead of the next one, and every later
 * statement on it would time out too.
 */
function discardingTimedOut(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let unanswered: Error | undefined;
      const wrapped = {
        async query(text: string, parameters: readonly unknown[]) {
          try {
            return await client.query(text, [...parameters]);
          } catch (err) {
            if (err instanceof Error && /Query read timeout/.test(err.message)) unanswered = err;
            throw err;
          }
        },
        release: () => client.release(unanswered),
      };
      // Kysely's cursor overload of `query` is never used here (no `cursor` in the dialect config).
      return wrapped as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}

async function createSchema(db: Kysely<Database>, schema: string): Promise<void> {
  try {
    await db.schema.createSchema(schema).ifNotExists().execute();
  } catch (err) {
    // Two processes creating it at once: `if not exists` still races in PostgreSQL (unique violation
    // on pg_namespace). Fine when it exists now.
    const { rows } = await sql`select 1 from pg_namespace where nspname = ${schema}`.execute(db);
    if (rows.length === 0) throw err;
  }
}

/** The PostgreSQL side of the store, for the schema `migrationTableSchema` (current_schema()). */
function postgresSupport(migrationTableSchema: string | undefined): DialectSupport {
  const lockKey = schedulerLockKey(migrationTableSchema ?? 'public');
  return {
    dialect: 'postgres',
    migrationTableSchema,
    async tableExists(db, table) {
      const { rows } = await sql`
        select 1 from information_schema.tables
        where table_schema = current_schema() and table_name = ${table}`.execute(db);
      return rows.length > 0;
    },
    classifyError: classifyPostgresError,
    /**
     * A session advisory lock held on one reserved connection for the duration of `work` (released
     * on unlock, or by the server if the connection dies). The key is derived from the schema, so
     * deployments (and test runs) in different schemas of one database do not block each other.
     */
    withSchedulerLock(db, work, guard) {
      return db.connection().execute(async (connection) => {
        const { rows } = await guard(() =>
          sql<{ locked: boolean }>`select pg_try_advisory_lock(${lockKey}::bigint) as locked`.execute(
            connection,
          ),
        );
        if (rows[0]?.locked !== true) return { ran: false };
        try {
          return { ran: true, value: await work() };
        } finally {
          await sql`select pg_advisory_unlock(${lockKey}::bigint)`.execute(connection).catch(() => undefined);
        }
      });
    },
  };
}

/**
 * The advisory lock key of the lifecycle scheduler for one PostgreSQL schema: the first 8 bytes of
 * SHA-256("twoway/scheduler/<schema>") as a signed 64-bit integer, in decimal.
 */
function schedulerLockKey(schema: string): string {
  return createHash('sha256').update(`twoway/scheduler/${schema}`).digest().readBigInt64BE(0).toString();
}

/** Node socket errors that mean the server is not there (or went away). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
]);

/**
 * SQLSTATEs that mean "try again later" rather than a fault of the request: class 08 (connection
 * exception) is matched by prefix; 57P01-57P03 (the server is shutting down, crashed or starting:
 * what a fast shutdown, a failover or `pg_terminate_backend` sends), 57014 (the statement was
 * cancelled: `statement_timeout`), 55P03 (lock_not_available), 53300 (too many connections).
 */
const UNAVAILABLE_CODES = new Set(['57P01', '57P02', '57P03', '57014', '55P03', '53300']);

/**
 * What pg reports without a SQLSTATE: a dropped connection, a connect or pool-wait timeout, a query
 * that got no answer within `query_timeout`, a client whose connection already failed.
 */
const UNAVAILABLE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|not queryable/i;

/** pg's `DatabaseError` carries the SQLSTATE (`23505`) and, for constraints, the table. */
function classifyPostgresError(err: unknown): DriverFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const { code, table } = err as { code?: unknown; table?: unknown };
  if (code === '23505') return { kind: 'unique', table: typeof table === 'string' ? table : undefined };
  if (code === '23503') return { kind: 'foreign_key' };
  // disk_full: the server could not extend a file.
  if (code === '53100') return { kind: 'full' };
  if (typeof code === 'string') {
    if (code.startsWith('08') || UNAVAILABLE_CODES.has(code) || NETWORK_CODES.has(code)) {
      return { kind: 'unavailable' };
    }
    return undefined;
  }
  if (UNAVAILABLE_MESSAGES.test(err.message)) return { kind: 'unavailable' };
  return undefined;
}
