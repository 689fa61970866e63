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

/** What the services keep of a validated upload (the certificates as PEM, the key as a KeyObject). */
export type ParsedIdentity = Pick<ValidatedIdentity, 'summary' | 'chainSummary' | 'certificatesPem'> & {
  privateKey: KeyObject;
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

/**
 * Runs {@link readIdentity} (identity.ts) in a pool of worker threads: at most one thread per spare
 * core (1 to 4), none while idle (threads start on demand and exit after 30 s without work).
 * Uploads beyond the threads wait in the pool's queue, in arrival order.
 */
export class IdentityParser {
  readonly #pool = new Piscina<ParseTask, ParseAnswer>({
    filename: workerFile(),
    minThreads: 0,
    maxThreads: Math.max(1, Math.min(4, availableParallelism() - 1)),
    idleTimeout: 30_000,
  });

  /**
   * Reads and validates `upload` against `now`, as {@link readIdentity} does.
   * @throws CertificateError with readIdentity's codes (`unsupported_format`, `bad_password`,
   *   `key_mismatch`, ...)
   */
  async parse(upload: IdentityUpload, now: Date): Promise<ParsedIdentity> {
    const answer = await this.#pool.run({ upload, nowMs: now.getTime() });
    if ('refused' in answer) {
      throw new CertificateError(answer.refused.code as CertificateErrorCode, answer.refused.message);
    }
    return answer.identity;
  }

  /** Stops the threads; a parse still running is abandoned. */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }
}
