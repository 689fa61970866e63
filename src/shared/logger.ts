import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Paths pino redacts: a second net behind the rule that key material, passwords and tokens are
 * never passed to a log call in the first place.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.passphrase',
  '*.privateKey',
  '*.privateKeyPem',
  '*.pkcs12',
  '*.apiKey',
  '*.token',
  '*.key',
  '*.masterKey',
  '*.operatorToken',
  'password',
  'privateKey',
  'apiKey',
  'masterKey',
  'operatorToken',
];

/** The root logger: JSON lines, redaction on, `level` from config. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'twoway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * A token bucket for a log line that a remote party can trigger on every request (a remote server
 * that does not speak HTTP): at most `burst` lines at once, refilled at `perMinute`, so the log
 * says what happens without one line per request. `take()` answers whether to log now and, when
 * so, how many lines were held back since the last one (log it as `suppressed`).
 */
export class LogLimiter {
  readonly #burst: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #suppressed = 0;

  /**
   * @param options.perMinute refill rate, lines per minute (default 6).
   * @param options.burst bucket size (default 3).
   * @param options.now monotonic milliseconds (default `performance.now`), injectable for tests.
   */
  constructor(options: { perMinute?: number; burst?: number; now?: () => number } = {}) {
    this.#burst = options.burst ?? 3;
    this.#perMs = (options.perMinute ?? 6) / 60_000;
    this.#now = options.now ?? (() => performance.now());
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** `null`: do not log; a number: log, with this many lines suppressed before it. */
  take(): number | null {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#perMs);
    this.#last = now;
    if (this.#tokens < 1) {
      this.#suppressed += 1;
      return null;
    }
    this.#tokens -= 1;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }

  /** `logger.warn(fields + { suppressed }, message)` when {@link take} allows it. */
  warn(logger: Logger, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.take();
    if (suppressed !== null) logger.warn({ ...fields, suppressed }, message);
  }
}
