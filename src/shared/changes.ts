import { EventEmitter } from 'node:events';

/** A change to a tenant's runtime-relevant objects, announced after the store committed it. */
export interface Change {
  tenantId: string;
  kind: 'identity' | 'mapping' | 'tenant';
  id: string;
}

/**
 * In-process change announcements: services emit after a committed write; the runtime index
 * listens and drops what it cached. Changes made by other processes are noticed by polling the
 * store's revision counter (see main.ts).
 */
export class ChangeBus {
  readonly #events = new EventEmitter();

  emit(change: Change): void {
    this.#events.emit('change', change);
  }

  /** Announces that anything may have changed (another process wrote to the store). */
  emitAll(): void {
    this.#events.emit('all');
  }

  on(listener: (change: Change) => void, onAll: () => void): void {
    this.#events.on('change', listener);
    this.#events.on('all', onAll);
  }
}
