/**
 * PostgreSQL faults a deployment meets: sessions terminated under load (a fast shutdown, a failover,
 * `pg_terminate_backend`), a database that holds a lock, one that goes silent mid-session, and an
 * address that accepts connections and never answers. Each must end in a 503 problem within the
 * configured bounds, never in a hang or a dead process, and Twoway must recover by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openStore } from '../../src/store/index.js';
import { tempDir } from '../fixtures/pki.js';
import { dropPostgresSchemas, postgresUrl as POSTGRES_URL, postgresSkipped } from '../helpers/databases.js';
import { freePort } from '../helpers/nginx.js';
import { startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TOKEN = 'faults-operator-token-0123456789';
const skipPostgres = await postgresSkipped();

/** A fresh schema, and a database URL that puts Twoway in it under its own application_name. */
async function freshSchema(
  url = POSTGRES_URL,
): Promise<{ schema: string; url: string; applicationName: string }> {
  const schema = `tw_fault_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client(POSTGRES_URL);
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const applicationName = `twoway_${schema}`;
  const withSchema = new URL(url);
  withSchema.searchParams.set('options', `-c search_path=${schema}`);
  withSchema.searchParams.set('application_name', applicationName);
  return { schema, url: withSchema.toString(), applicationName };
}

/** A second session, as an operator (or a failing database) would use one. */
async function adminSession(): Promise<pg.Client> {
  const client = new pg.Client(POSTGRES_URL);
  await client.connect();
  return client;
}

/** Polls `check` every 50 ms until it is true; throws after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Status and problem code of a fetch, with how long it took (ms); status 0 when it failed. */
async function timed(
  request: Promise<Response>,
): Promise<{ status: number; code: string | undefined; ms: number }> {
  const started = performance.now();
  try {
    const response = await request;
    const text = await response.text();
    const code = response.headers.get('content-type')?.includes('problem+json')
      ? (JSON.parse(text) as { code: string }).code
      : undefined;
    return { status: response.status, code, ms: performance.now() - started };
  } catch {
    return { status: 0, code: undefined, ms: performance.now() - started };
  }
}

/**
 * A TCP relay to PostgreSQL that can go silent: while frozen it keeps every connection open and
 * reads what both sides send, but passes nothing on (a stalled server, or a network path that
 * drops packets without resetting anything). Thawing delivers what was held.
 */
async function startFreezableRelay(target: URL): Promise<{
  port: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}> {
  let frozen = false;
  const held: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const relay = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      if (frozen) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  };
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    relay(client, upstream);
    relay(upstream, client);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    port: (server.address() as { port: number }).port,
    freeze() {
      frozen = true;
    },
    thaw() {
      frozen = false;
      for (const send of held.splice(0)) send();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

describe.skipIf(skipPostgres)('PostgreSQL faults', () => {
  const schemas: string[] = [];
  afterAll(() => dropPostgresSchemas(schemas));

  describe('sessions terminated while in use (twoway serve in a child process)', () => {
    let serve: ChildProcess;
    let api: string;
    let database: Awaited<ReturnType<typeof freshSchema>>;
    const data = tempDir('twoway-terminate-');

    beforeAll(async () => {
      database = await freshSchema();
      schemas.push(database.schema);
      const port = await freePort();
      api = `http://127.0.0.1:${port}`;
      serve = spawn('node', [join(ROOT, 'dist/cli/index.js'), 'serve'], {
        env: {
          ...process.env,
          TWOWAY_DATABASE_URL: database.url,
          TWOWAY_HTTP_PORT: String(port),
          TWOWAY_EDGE_PORT: String(await freePort()),
          TWOWAY_DATA_DIR: data.dir,
          TWOWAY_OPERATOR_TOKEN: TOKEN,
          // The terminations must find the requests still waiting on the lock.
          TWOWAY_DATABASE_STATEMENT_TIMEOUT_MS: '20000',
          // The revision poll would wait on the lock too, filling the pool.
          TWOWAY_CHANGE_POLL_INTERVAL_MS: '600000',
          TWOWAY_LOG_LEVEL: 'warn',
        },
        stdio: 'ignore',
      });
      await until(
        () =>
          fetch(`${api}/readyz`).then(
            (r) => r.ok,
            () => false,
          ),
        30_000,
        'twoway serve to be ready',
      );
    });

    afterAll(() => {
      if (serve.exitCode === null) serve.kill('SIGKILL');
      data.cleanup();
    });

    const createTenant = (id: string) =>
      fetch(`${api}/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ id, name: id }),
      });

    test('the process survives pg_terminate_backend on its sessions, answers 503 not_ready, then recovers', async () => {
      // The lock holder, and an observer: inside a transaction pg_stat_activity is a snapshot taken
      // at its first use, so the holder would not see the writes arrive.
      const admin = await adminSession();
      const observer = await adminSession();
      try {
        for (let round = 0; round < 3; round++) {
          // Hold the write lock so that every write request sits in its transaction, on a checked-out
          // session, when the sessions are terminated.
          await admin.query('begin');
          await admin.query(`lock table ${database.schema}.revision in access exclusive mode`);
          const requests = Array.from({ length: 6 }, (_, i) =>
            timed(createTenant(`t-${round}-${i}-${randomBytes(3).toString('hex')}`)),
          );
          await until(
            async () => {
              const { rows } = await observer.query<{ waiting: number }>(
                `select count(*)::int as waiting from pg_stat_activity
                 where application_name = $1 and wait_event_type = 'Lock'`,
                [database.applicationName],
              );
              return (rows[0]?.waiting ?? 0) >= 6;
            },
            10_000,
            'the writes to wait on the lock',
          );
          const { rows } = await observer.query<{ terminated: number }>(
            `select count(*)::int as terminated from
               (select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1) t`,
            [database.applicationName],
          );
          expect(rows[0]?.terminated).toBeGreaterThanOrEqual(6);
          await admin.query('rollback');
          const answers = await Promise.all(requests);
          expect(answers.map((a) => [a.status, a.code])).toEqual(answers.map(() => [503, 'not_ready']));
          // Give a dead-session 'error' event time to surface before checking the process.
          await new Promise((r) => setTimeout(r, 300));
          expect(serve.exitCode).toBeNull();
        }
        // Recovered: new sessions, and the writes go through.
        expect((await createTenant(`after-${randomBytes(3).toString('hex')}`)).status).toBe(201);
        expect((await fetch(`${api}/readyz`)).status).toBe(200);
        expect(serve.exitCode).toBeNull();
      } finally {
        await admin.query('rollback').catch(() => undefined);
        await admin.end();
        await observer.end();
      }
    });
  });

  describe('a stalled or silent database answers 503 within the configured bounds', () => {
    let twoway: TestTwoway;
    let database: Awaited<ReturnType<typeof freshSchema>>;
    let relay: Awaited<ReturnType<typeof startFreezableRelay>>;

    beforeAll(async () => {
      relay = await startFreezableRelay(new URL(POSTGRES_URL));
      const viaRelay = new URL(POSTGRES_URL);
      viaRelay.host = `127.0.0.1:${relay.port}`;
      database = await freshSchema(viaRelay.toString());
      schemas.push(database.schema);
      twoway = await startTestTwoway({
        TWOWAY_DATABASE_URL: database.url,
        TWOWAY_DATABASE_CONNECT_TIMEOUT_MS: '1000',
        TWOWAY_DATABASE_STATEMENT_TIMEOUT_MS: '1000',
        TWOWAY_READY_TIMEOUT_MS: '500',
      });
    });

    afterAll(async () => {
      relay?.thaw();
      await twoway?.close();
      await relay?.close();
    });

    const createTenant = () =>
      twoway.call('/v1/tenants', {
        method: 'POST',
        json: { id: `t-${randomBytes(4).toString('hex')}`, name: 'T' },
      });
    /** A forward whose API key this process has never seen: it must be looked up in the store. */
    const uncachedForward = () =>
      fetch(`${twoway.url}/v1/runtime/forward`, {
        headers: {
          authorization: `Bearer tw_${randomBytes(16).toString('hex')}`,
          'twoway-service': 'api',
          'twoway-forward-url': 'https://example.com/',
        },
      });

    test('a lock held by another session: writes and uncached forwards get 503 not_ready after the statement timeout', async () => {
      const admin = await adminSession();
      try {
        await admin.query('begin');
        await admin.query(`lock table ${database.schema}.revision in access exclusive mode`);
        await admin.query(`lock table ${database.schema}.api_keys in access exclusive mode`);
        const [write, forward] = await Promise.all([timed(createTenant()), timed(uncachedForward())]);
        expect([write.status, write.code]).toEqual([503, 'not_ready']);
        expect([forward.status, forward.code]).toEqual([503, 'not_ready']);
        // statement_timeout is 1 s; without it both waited for the lock as long as it was held.
        expect(write.ms).toBeLessThan(4_000);
        expect(forward.ms).toBeLessThan(4_000);
        // The database itself still answers.
        expect((await fetch(`${twoway.url}/readyz`)).status).toBe(200);
      } finally {
        await admin.query('rollback');
        await admin.end();
      }
      expect((await createTenant()).status).toBe(201);
      expect((await timed(uncachedForward())).code).toBe('unauthorized');
    });

    test('a database gone silent mid-session: /readyz, writes and uncached forwards get 503 within their bounds, then recover', async () => {
      expect((await createTenant()).status).toBe(201);
      relay.freeze();
      try {
        const ready = await timed(fetch(`${twoway.url}/readyz`));
        expect([ready.status, ready.code]).toEqual([503, 'not_ready']);
        // TWOWAY_READY_TIMEOUT_MS is 500.
        expect(ready.ms).toBeLessThan(2_000);
        const [write, forward] = await Promise.all([timed(createTenant()), timed(uncachedForward())]);
        expect([write.status, write.code]).toEqual([503, 'not_ready']);
        expect([forward.status, forward.code]).toEqual([503, 'not_ready']);
        // Statement timeout 1 s plus 1 s of grace on a pooled session; connect timeout 1 s on a new one.
        expect(write.ms).toBeLessThan(6_000);
        expect(forward.ms).toBeLessThan(6_000);
      } finally {
        relay.thaw();
      }
      // Sessions that went silent were dropped: new ones work at once.
      await until(
        () =>
          fetch(`${twoway.url}/readyz`).then(
            (r) => r.ok,
            () => false,
          ),
        10_000,
        '/readyz to recover',
      );
      expect((await createTenant()).status).toBe(201);
    });
  });

  test('a database URL whose server accepts connections and never answers fails within the connect timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    const { port } = silent.address() as { port: number };
    const data = tempDir('twoway-silent-');
    try {
      const started = performance.now();
      const outcome = await openStore(`postgres://twoway:secret@127.0.0.1:${port}/twoway`, data.dir, {
        connectTimeoutMs: 500,
      }).then(
        async (store) => {
          await store.close();
          return undefined;
        },
        (err: unknown) => err,
      );
      expect(outcome).toBeInstanceOf(Error);
      expect((outcome as Error).message).toMatch(/timeout/i);
      expect((outcome as Error).message).not.toContain('secret');
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(sockets.length).toBeGreaterThan(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => silent.close(() => done()));
      data.cleanup();
    }
  });
});
