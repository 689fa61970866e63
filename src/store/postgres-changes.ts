/**
 * PostgreSQL change notification: every write transaction `NOTIFY`s the revision it set on a channel
 * of its schema, and each process `LISTEN`s on one dedicated session (not a pooled one: a pooled
 * session is handed to other statements and may be dropped at any time, and a LISTEN is per session).
 */
import { createHash } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database } from './tables.js';
import type { RevisionWatch, RevisionWatchHandlers } from './types.js';

/** First wait (ms) before subscribing again after the listening session was lost; doubles per failure. */
const RETRY_BASE_MS = 100;
/** Longest wait (ms) between subscription attempts. */
const RETRY_MAX_MS = 5_000;

/**
 * The notification channel of one schema: `twoway_` and the first 16 hex digits of
 * SHA-256("twoway/changes/<schema>"), so that deployments (and test runs) in different schemas of
 * one database do not hear each other, and the name stays under PostgreSQL's 63-byte limit.
 */
export function changeChannel(schema: string): string {
  return `twoway_${createHash('sha256').update(`twoway/changes/${schema}`).digest('hex').slice(0, 16)}`;
}

/**
 * Queues `NOTIFY <channel>, '<revision>'` in the write transaction `trx`, which has just bumped the
 * revision: the server delivers it when (and only if) the transaction commits.
 */
export async function notifyRevision(trx: Transaction<Database>, channel: string): Promise<void> {
  await sql`select pg_notify(${channel}, value::text) from revision where id = 1`.execute(trx);
}

/** Options of {@link listenForRevisions}. */
export interface RevisionListenerOptions {
  /** The store's connection string (pg syntax). */
  url: string;
  /** From {@link changeChannel}. */
  channel: string;
  /** Longest wait (ms) for the listening session to connect. */
  connectTimeoutMs: number;
}

/**
 * Keeps one session `LISTEN`ing on `options.channel` and calls `handlers.onRevision` for each
 * revision announced. When the session is lost (a PostgreSQL restart or failover, a
 * `pg_terminate_backend`, a network fault), it reports `onLost` and subscribes again after 100 ms,
 * doubling up to 5 s between failed attempts (with jitter, so that many processes do not reconnect in
 * step); after subscribing again it calls `onResubscribed`, since announcements made while it was
 * away are gone. TCP keepalive notices a peer gone silent (in minutes); the revision poll covers the
 * time in between.
 */
export function listenForRevisions(
  options: RevisionListenerOptions,
  handlers: RevisionWatchHandlers,
): RevisionWatch {
  let closed = false;
  let failures = 0;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;

  const lost = (session: pg.Client, err: unknown) => {
    if (closed || client !== session) return;
    client = undefined;
    session.end().catch(() => {});
    const delayMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    handlers.onLost?.(err, Math.round(delayMs));
    timer = setTimeout(() => void subscribe(true), delayMs);
    timer.unref();
  };

  const subscribe = async (again: boolean) => {
    if (closed) return;
    const session = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs,
      // Probes after 10 s of silence (the OS default waits two hours): a session whose peer went
      // away without a word is noticed in minutes, not hours; the revision poll covers until then.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      fallback_application_name: 'twoway-listen',
    });
    client = session;
    session.on('error', (err) => lost(session, err));
    session.on('end', () => lost(session, new Error('the listening session ended')));
    session.on('notification', (message) => {
      const revision = Number(message.payload);
      if (message.channel === options.channel && Number.isSafeInteger(revision)) {
        handlers.onRevision(revision);
      }
    });
    try {
      await session.connect();
      await session.query(`LISTEN ${session.escapeIdentifier(options.channel)}`);
    } catch (err) {
      lost(session, err);
      return;
    }
    if (closed || client !== session) return;
    failures = 0;
    if (again) handlers.onResubscribed?.();
  };

  void subscribe(false);
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const session = client;
      client = undefined;
      await session?.end().catch(() => {});
    },
  };
}
