import type { Logger } from 'pino';
import type { Store } from '../store/types.js';

/** Options of {@link followRevisions}. */
export interface RevisionFollowerOptions {
  store: Pick<Store, 'getRevision' | 'watchRevisions'>;
  /** Poll period (ms) of the revision counter (TWOWAY_CHANGE_POLL_INTERVAL_MS). */
  pollIntervalMs: number;
  /** Called once per revision seen to move (drop caches, reload indexes); must not throw. */
  onChange: () => void;
  logger: Logger;
}

/** A running {@link followRevisions}. */
export interface RevisionFollower {
  /** Stops the poll and the listening session. */
  close(): Promise<void>;
}

/**
 * Notices writes made by other processes (the CLI, other replicas) to the shared store. On
 * PostgreSQL each committed write is announced (LISTEN/NOTIFY) and applied within milliseconds; the
 * revision poll stays as the fallback for the time the listening session is down (and is all there
 * is on SQLite, a single host). After the session comes back, the revision is read at once, since
 * announcements made while it was away are lost.
 *
 * Reads its starting revision first, so a write committed before the call is not reported.
 */
export async function followRevisions(options: RevisionFollowerOptions): Promise<RevisionFollower> {
  const { store, logger } = options;
  let revision = await store.getRevision();
  const seen = (current: number) => {
    if (current === revision) return;
    revision = current;
    options.onChange();
  };
  const poll = () =>
    store.getRevision().then(seen, (err: unknown) => logger.warn({ err }, 'store revision poll failed'));
  const timer = setInterval(poll, options.pollIntervalMs);
  timer.unref();
  const watch = store.watchRevisions?.({
    // An announcement older than what the poll already saw changes nothing.
    onRevision: (announced) => {
      if (announced > revision) seen(announced);
    },
    onLost: (err, retryInMs) =>
      logger.warn({ err, retryInMs }, 'store change listener lost its session; polling until it is back'),
    onResubscribed: () => {
      logger.info('store change listener subscribed again');
      void poll();
    },
  });
  return {
    async close() {
      clearInterval(timer);
      await watch?.close();
    },
  };
}
