import { pino } from 'pino';
import { describe, expect, test } from 'vitest';
import { followRevisions } from '../../../src/shared/revision-follower.js';
import type { RevisionWatchHandlers } from '../../../src/store/index.js';

/** A store whose revision the test sets, and whose watch hands its handlers to the test. */
function fakeStore(start: number) {
  const state = { revision: start, handlers: undefined as RevisionWatchHandlers | undefined, closed: false };
  const store = {
    getRevision: async () => state.revision,
    watchRevisions(handlers: RevisionWatchHandlers) {
      state.handlers = handlers;
      return {
        async close() {
          state.closed = true;
        },
      };
    },
  };
  return { store, state };
}

async function follow(start: number) {
  const { store, state } = fakeStore(start);
  const changes = { count: 0 };
  const follower = await followRevisions({
    store,
    pollIntervalMs: 3_600_000,
    logger: pino({ level: 'silent' }),
    onChange: () => {
      changes.count += 1;
    },
  });
  return { follower, state, changes };
}

describe('followRevisions', () => {
  test('an announced revision applies once; an older or repeated one changes nothing', async () => {
    const { follower, state, changes } = await follow(3);
    state.handlers?.onRevision(3);
    expect(changes.count).toBe(0);
    state.handlers?.onRevision(4);
    state.handlers?.onRevision(4);
    state.handlers?.onRevision(2);
    expect(changes.count).toBe(1);
    await follower.close();
    expect(state.closed).toBe(true);
  });

  test('after subscribing again it reads the revision, since announcements in between were lost', async () => {
    const { follower, state, changes } = await follow(3);
    state.handlers?.onLost?.(new Error('terminated'), 100);
    state.revision = 7;
    state.handlers?.onResubscribed?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(changes.count).toBe(1);
    // The announcement of that same write, late, is not applied twice.
    state.handlers?.onRevision(7);
    expect(changes.count).toBe(1);
    await follower.close();
  });

  test('a store without notifications (SQLite) is only polled', async () => {
    const changes = { count: 0 };
    const follower = await followRevisions({
      store: { getRevision: async () => 1 },
      pollIntervalMs: 3_600_000,
      logger: pino({ level: 'silent' }),
      onChange: () => {
        changes.count += 1;
      },
    });
    expect(changes.count).toBe(0);
    await follower.close();
  });
});
