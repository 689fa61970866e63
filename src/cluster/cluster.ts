import cluster, { type Worker } from 'node:cluster';
import type { Change, ChangeRelay } from '../shared/changes.js';

/** Messages between the primary and the workers of `twoway serve` with TWOWAY_WORKERS > 1. */
type Message =
  | { twoway: 'change'; id: number; change: Change }
  | { twoway: 'ack'; id: number }
  | { twoway: 'settled'; id: number };

function isMessage(value: unknown): value is Message {
  return (
    typeof value === 'object' && value !== null && typeof (value as { twoway?: unknown }).twoway === 'string'
  );
}

/** How long a change waits for the other workers' acknowledgements before it gives up, in ms. */
const ACK_TIMEOUT_MS = 2_000;

/**
 * Primary side: forks `count` workers (each runs the whole service on the shared ports) and relays
 * announced changes between them. A change from worker A goes to every other live worker; when
 * all have acknowledged (or ACK_TIMEOUT_MS passed, or they died), A is told it is settled, and
 * only then does A answer the request that made the change. So "the next request after the
 * activation call returned uses the new version" holds whichever worker that request reaches.
 * A worker that dies is replaced after `restartDelayMs`.
 */
export function runPrimary(
  count: number,
  options: { restartDelayMs?: number; log(message: string): void },
): void {
  interface Relay {
    sender: Worker;
    senderId: number;
    waiting: Set<number>;
    timer: NodeJS.Timeout;
  }
  const relays = new Map<number, Relay>();
  /** Worker id → its index (0 runs the scheduler); a replacement keeps the index of the one it replaces. */
  const indexes = new Map<number, number>();
  let nextId = 0;
  let stopping = false;
  const fork = (index: number) => {
    const worker = cluster.fork({ TWOWAY_WORKER_INDEX: String(index) });
    indexes.set(worker.id, index);
    attach(worker);
  };

  const finish = (relayId: number) => {
    const relay = relays.get(relayId);
    if (!relay) return;
    relays.delete(relayId);
    clearTimeout(relay.timer);
    if (relay.sender.isConnected())
      relay.sender.send({ twoway: 'settled', id: relay.senderId } satisfies Message);
  };

  const attach = (worker: Worker) => {
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return;
      if (message.twoway === 'change') {
        const relayId = nextId++;
        const others = Object.values(cluster.workers ?? {}).filter(
          (w): w is Worker => w !== undefined && w !== worker && w.isConnected(),
        );
        relays.set(relayId, {
          sender: worker,
          senderId: message.id,
          waiting: new Set(others.map((w) => w.id)),
          timer: setTimeout(() => finish(relayId), ACK_TIMEOUT_MS),
        });
        for (const other of others)
          other.send({ twoway: 'change', id: relayId, change: message.change } satisfies Message);
        if (others.length === 0) finish(relayId);
      } else if (message.twoway === 'ack') {
        const relay = relays.get(message.id);
        if (relay?.waiting.delete(worker.id) && relay.waiting.size === 0) finish(message.id);
      }
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    for (const [id, relay] of relays) {
      if (relay.waiting.delete(worker.id) && relay.waiting.size === 0) finish(id);
    }
    const index = indexes.get(worker.id) ?? 0;
    indexes.delete(worker.id);
    if (stopping) return;
    options.log(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    setTimeout(() => fork(index), options.restartDelayMs ?? 500);
  });

  for (let i = 0; i < count; i++) fork(i);

  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/**
 * Worker side: a {@link ChangeRelay} that sends this worker's changes to the primary and resolves
 * once every other worker has applied them; `apply` is called for changes made by other workers,
 * which are acknowledged after it ran.
 */
export function workerRelay(apply: (change: Change) => Promise<void>): ChangeRelay {
  let nextId = 0;
  const waiting = new Map<number, () => void>();
  process.on('message', (message: unknown) => {
    if (!isMessage(message)) return;
    if (message.twoway === 'change') {
      const ack = () => process.send?.({ twoway: 'ack', id: message.id } satisfies Message);
      apply(message.change).then(ack, ack);
    } else if (message.twoway === 'settled') {
      waiting.get(message.id)?.();
      waiting.delete(message.id);
    }
  });
  return {
    publish(change: Change): Promise<void> {
      const id = nextId++;
      return new Promise<void>((resolve) => {
        // The primary settles within ACK_TIMEOUT_MS; if it is gone, do not hang the request.
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve();
        }, ACK_TIMEOUT_MS * 2);
        waiting.set(id, () => {
          clearTimeout(timer);
          resolve();
        });
        process.send?.({ twoway: 'change', id, change } satisfies Message);
      });
    },
  };
}
