import { EventEmitter } from 'node:events';

/** A change to a tenant's runtime-relevant objects, announced after the store committed it. */
export interface Change {
  tenantId: string;
  /** `role`: a custom role changed, so the permissions of keys and members holding it did too. */
  kind: 'identity' | 'mapping' | 'tenant' | 'client_certificate' | 'api_key' | 'role';
  id: string;
}

/** Carries changes to the other workers of this deployment (see cluster/cluster.ts). */
export interface ChangeRelay {
  /** Resolves once every other worker has applied `change` (or could not be reached in time). */
  publish(change: Change): Promise<void>;
}

/**
 * Change announcements: services emit after a committed write; the runtime index listens and
 * drops what it cached. With several workers (TWOWAY_WORKERS), a relay carries each change to the
 * others and `emit` resolves only when they applied it, so a request answered after a change sees
 * it in every worker. Changes made by other processes (the CLI, other hosts) are noticed by polling
 * the store's revision counter (see main.ts).
 */
export class ChangeBus {
  readonly #events = new EventEmitter();
  readonly #peerListeners: ((change: Change) => Promise<void>)[] = [];
  #relay: ChangeRelay | undefined;

  /** Sets the relay to the other workers; without one, changes stay in this process. */
  setRelay(relay: ChangeRelay): void {
    this.#relay = relay;
  }

  /** Applies `change` here, then (with a relay) waits until the other workers applied it. */
  emit(change: Change): Promise<void> {
    this.#events.emit('change', change);
    return this.#relay ? this.#relay.publish(change) : Promise.resolve();
  }

  /**
   * Applies a change another worker made (nothing is relayed back); resolves once the listeners
   * registered with {@link onPeerChange} finished, so the relay acknowledges only then.
   */
  async applyFromPeer(change: Change): Promise<void> {
    this.#events.emit('change', change);
    await Promise.all(this.#peerListeners.map((listener) => listener(change)));
  }

  /** Work to finish before a change from another worker counts as applied (e.g. an index reload). */
  onPeerChange(listener: (change: Change) => Promise<void>): void {
    this.#peerListeners.push(listener);
  }

  /** Announces that anything may have changed (another process wrote to the store). */
  emitAll(): void {
    this.#events.emit('all');
  }

  /** Calls `listener` for each change and `onAll` for "anything may have changed", synchronously. */
  on(listener: (change: Change) => void, onAll: () => void): void {
    this.#events.on('change', listener);
    this.#events.on('all', onAll);
  }
}
