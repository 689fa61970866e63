import { catalogue, type ErrorCode, isErrorCode } from './catalogue.js';

/**
 * The one error type Twoway throws on purpose. `code` is stable (see catalogue.ts), `status` is the
 * HTTP status, `detail` is safe to show to the caller: it never holds key material, passwords or
 * tokens. `cause` keeps the original error for the log only.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string;
  /** Sent as `Retry-After` (RFC 9110 §10.2.3) with a 429 or 503, in seconds. */
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown; retryAfterSeconds?: number }) {
    const entry = catalogue[code];
    super(detail ?? entry.title, options);
    this.name = 'AppError';
    this.code = code;
    this.status = entry.status;
    this.detail = detail ?? entry.title;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/**
 * Turns any error that carries a catalogue `code` (for example a `CertificateError` from
 * certificates/, which imports nothing of ours) into an AppError, keeping a numeric
 * `retryAfterSeconds`; anything else becomes `internal_error` with the original kept as `cause`.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const { code, retryAfterSeconds } = (err ?? {}) as { code?: unknown; retryAfterSeconds?: unknown };
  if (err instanceof Error && isErrorCode(code)) {
    return new AppError(code, err.message, {
      cause: err,
      ...(typeof retryAfterSeconds === 'number' ? { retryAfterSeconds } : {}),
    });
  }
  return new AppError('internal_error', undefined, { cause: err });
}

/** RFC 9457 problem details body. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
}

/** The problem+json body for an AppError; 5xx details stay generic. */
export function problemOf(err: AppError): Problem {
  const entry = catalogue[err.code];
  return {
    type: `/docs/errors#${err.code}`,
    title: entry.title,
    status: err.status,
    detail: err.status >= 500 && err.code === 'internal_error' ? entry.title : err.detail,
    code: err.code,
  };
}
