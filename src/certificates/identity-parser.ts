/**
 * Identity uploads parsed in worker threads (piscina), so that key derivation never holds the event
 * loop: a PKCS#12 file may ask for up to the WorkBudget of hash rounds (pbe.ts), seconds of CPU.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { CertificateError, type CertificateErrorCode } from './errors.js';
import type { IdentityUpload, ValidatedIdentity } from './identity.js';
import type { ParseAnswer, ParseTask } from './identity-worker.js';
import { TenantQueue, type TenantQueueLimits } from './parse-queue.js';

export { ParseQueueFullError } from './parse-queue.js';

/** What the services keep of a validated upload (the certificates as PEM, the key as a KeyObject). */
export type ParsedIdentity = Pick<ValidatedIdentity, 'summary' | 'chainSummary' | 'certificatesPem'> & {
  privateKey: KeyObject;
};

/** Sizes of the parser; every field has a default. */
export interface IdentityParserOptions extends Partial<TenantQueueLimits> {
  /** Uploads parsed at once, one thread each. Default: one per spare core, 1 to 4. */
  maxThreads?: number;
}

/** Defaults: 64 uploads waiting in all, 8 per tenant, "retry after 2 s" when full. */
export const PARSE_QUEUE_DEFAULTS: TenantQueueLimits = {
  maxQueued: 64,
  maxQueuedPerTenant: 8,
  retryAfterSeconds: 2,
};

/**
 * The compiled worker module: beside this one in dist/. From the TypeScript sources (the test
 * runner) it is the build's copy: worker threads load plain JavaScript, and `npm test` builds first.
 */
function workerFile(): string {
  const here = import.meta.url;
  return here.endsWith('.ts')
    ? new URL('../../dist/certificates/identity-worker.js', here).href
    : new URL('./identity-worker.js', here).href;
}

interface Job {
  task: ParseTask;
  resolve(answer: ParseAnswer): void;
  reject(err: unknown): void;
}

/**
 * Runs {@link readIdentity} (identity.ts) in a pool of worker threads: at most `maxThreads` at once
 * (default one per spare core, 1 to 4), none while idle (threads start on demand and exit after
 * 30 s without work). Uploads beyond the threads wait in a {@link TenantQueue}: tenants take turns,
 * and a full queue refuses at once with `parse_queue_full`.
 */
export class IdentityParser {
  readonly #maxThreads: number;
  readonly #queue: TenantQueue<Job>;
  readonly #pool: Piscina<ParseTask, ParseAnswer>;
  #running = 0;

  constructor(options: IdentityParserOptions = {}) {
    const { maxThreads, ...limits } = options;
    this.#maxThreads = maxThreads ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    this.#queue = new TenantQueue({ ...PARSE_QUEUE_DEFAULTS, ...limits });
    this.#pool = new Piscina<ParseTask, ParseAnswer>({
      filename: workerFile(),
      minThreads: 0,
      maxThreads: this.#maxThreads,
      idleTimeout: 30_000,
    });
  }

  /**
   * Reads and validates `upload` against `now`, as {@link readIdentity} does, in `tenantId`'s turn.
   * @throws CertificateError with readIdentity's codes (`unsupported_format`, `bad_password`,
   *   `key_mismatch`, ...); ParseQueueFullError (`parse_queue_full`) when the queue is full.
   */
  async parse(tenantId: string, upload: IdentityUpload, now: Date): Promise<ParsedIdentity> {
    const answer = await new Promise<ParseAnswer>((resolve, reject) => {
      const job: Job = { task: { upload, nowMs: now.getTime() }, resolve, reject };
      if (this.#running < this.#maxThreads) this.#start(job);
      else this.#queue.push(tenantId, job);
    });
    if ('refused' in answer) {
      throw new CertificateError(answer.refused.code as CertificateErrorCode, answer.refused.message);
    }
    return answer.identity;
  }

  #start(job: Job): void {
    this.#running += 1;
    this.#pool
      .run(job.task)
      .then(job.resolve, job.reject)
      .finally(() => {
        this.#running -= 1;
        const next = this.#queue.shift();
        if (next) this.#start(next);
      });
  }

  /** Stops the threads; a parse still running is abandoned, and waiting uploads are refused. */
  async close(): Promise<void> {
    for (const job of this.#queue.drain()) job.reject(new Error('The parser is closed.'));
    await this.#pool.destroy();
  }
}
