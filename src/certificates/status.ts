/** Lifecycle status of an identity or certificate, computed from `notAfter`. */
export type CertificateStatus = 'active' | 'expiring' | 'expired' | 'disabled';

/**
 * One day in milliseconds. Certificate validity periods, expiry thresholds and days left are counted
 * in whole days of 86,400 s (RFC 5280 times are UTC, which has no daylight saving).
 */
export const DAY_MS = 86_400_000;

/**
 * `expired` once `now` is past `notAfter` (RFC 5280 §4.1.2.5: notAfter is inclusive), `expiring`
 * within the first threshold (days; default 7), else `active`; `disabled` wins over all.
 */
export function certificateStatus(
  notAfter: Date,
  now: Date,
  options: { disabled?: boolean; expiringWithinDays?: number } = {},
): CertificateStatus {
  if (options.disabled) return 'disabled';
  const left = notAfter.getTime() - now.getTime();
  if (left < 0) return 'expired';
  if (left <= (options.expiringWithinDays ?? 7) * DAY_MS) return 'expiring';
  return 'active';
}

/** Why an identity version may not be presented (its code and a short detail). */
export interface PresentationRefusal {
  code: 'identity_disabled' | 'identity_expired' | 'identity_not_yet_valid';
  detail: string;
}

/**
 * Why a forward (or the certificate tester) must not present an identity version at `nowMs`:
 * disabled, past its notAfter, or before its notBefore (RFC 5280 §4.1.2.5); undefined when it may.
 * Computed per call, never cached: an identity expires while cached.
 */
export function presentationRefusal(
  disabled: boolean,
  validity: { notBefore: Date; notAfter: Date },
  nowMs: number,
): PresentationRefusal | undefined {
  if (disabled) return { code: 'identity_disabled', detail: 'The identity is disabled.' };
  if (validity.notAfter.getTime() < nowMs) {
    return {
      code: 'identity_expired',
      detail: 'The identity has expired; upload a new version.',
    };
  }
  if (validity.notBefore.getTime() > nowMs) {
    return {
      code: 'identity_not_yet_valid',
      detail: 'The identity is not valid yet (notBefore).',
    };
  }
  return undefined;
}
