import { describe, expect, test } from 'vitest';
import { certificateStatus } from '../../../src/certificates/status.js';

const now = new Date('2026-11-21T12:00:00Z');
const days = (d: number) => new Date(now.getTime() + d * 86_400_000);

describe('certificateStatus', () => {
  test.each([
    [days(60), 'active'],
    [days(7.5), 'active'],
    [days(7), 'expiring'],
    [days(0.1), 'expiring'],
    [days(-0.1), 'expired'],
  ])('notAfter %s → %s', (notAfter, status) => {
    expect(certificateStatus(notAfter, now)).toBe(status);
  });

  test('disabled wins; the threshold is configurable', () => {
    expect(certificateStatus(days(60), now, { disabled: true })).toBe('disabled');
    expect(certificateStatus(days(20), now, { expiringWithinDays: 30 })).toBe('expiring');
  });
});
