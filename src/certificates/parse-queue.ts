/**
 * The waiting line of the upload parser (identity-parser.ts): one line per tenant, served in turn,
 * so that one tenant's burst of uploads delays another tenant's upload by at most one parse per
 * tenant ahead of it, not by the whole burst. Bounded in total and per tenant: a full line refuses
 * at once (`parse_queue_full`, 429 with Retry-After) rather than holding requests open.
 */

/**
 * An upload refused because the parse queue is full. Not a CertificateError: nothing is wrong with
 * the upload, and the certificate tester must not report it as the certificate's fault. `code` is a
 * catalogue code, so `toAppError()` maps it to 429; `retryAfterSeconds` becomes `Retry-After`.
 */
export class ParseQueueFullError extends Error {
  readonly code = 'parse_queue_full';

  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'ParseQueueFullError';
  }
}

/** Bounds of a {@link TenantQueue}. */
export interface TenantQueueLimits {
  /** Items waiting across all tenants. */
  maxQueued: number;
  /** Items one tenant may have waiting. */
  maxQueuedPerTenant: number;
  /** What a refusal tells the caller to wait before retrying, in seconds. */
  retryAfterSeconds: number;
}

/** A FIFO per tenant, served round-robin: `shift()` takes the head of the tenant whose turn it is. */
export class TenantQueue<T> {
  /** Tenants with waiting items, in turn order (a Map keeps insertion order). */
  readonly #lines = new Map<string, T[]>();
  #size = 0;

  constructor(private readonly limits: TenantQueueLimits) {}

  /** Items waiting across all tenants. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds `item` at the end of `tenantId`'s line.
   * @throws ParseQueueFullError when the queue or the tenant's line is full.
   */
  push(tenantId: string, item: T): void {
    const line = this.#lines.get(tenantId);
    if ((line?.length ?? 0) >= this.limits.maxQueuedPerTenant) {
      throw new ParseQueueFullError(
        `${this.limits.maxQueuedPerTenant} uploads of this tenant are already waiting to be checked; retry later.`,
        this.limits.retryAfterSeconds,
      );
    }
    if (this.#size >= this.limits.maxQueued) {
      throw new ParseQueueFullError(
        'Too many uploads are waiting to be checked; retry later.',
        this.limits.retryAfterSeconds,
      );
    }
    if (line) line.push(item);
    else this.#lines.set(tenantId, [item]);
    this.#size += 1;
  }

  /** The next item: the head of the first tenant's line; that tenant then goes to the back. */
  shift(): T | undefined {
    const next = this.#lines.entries().next();
    if (next.done) return undefined;
    const [tenantId, line] = next.value;
    const item = line.shift();
    this.#lines.delete(tenantId);
    if (line.length > 0) this.#lines.set(tenantId, line);
    this.#size -= 1;
    return item;
  }

  /** Removes and returns every waiting item, in no particular order. */
  drain(): T[] {
    const items = [...this.#lines.values()].flat();
    this.#lines.clear();
    this.#size = 0;
    return items;
  }
}
