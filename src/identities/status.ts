/** Lifecycle status of an identity or certificate, computed from `notAfter`. */
export type CertificateStatus = 'active' | 'expiring' | 'expired' | 'disabled';

const DAY_MS = 86_400_000;

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
