import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../../src/config/config.js';

describe('lifecycle configuration', () => {
  test('defaults: hourly scan, 30 s first retry doubling to 1 h, 10 attempts, 10 s timeouts', () => {
    expect(loadConfig({})).toMatchObject({
      smtpFrom: 'Twoway <twoway@localhost>',
      lifecycleScanIntervalMs: 3_600_000,
      notificationRetryBaseMs: 30_000,
      notificationRetryMaxMs: 3_600_000,
      notificationMaxAttempts: 10,
      notificationTimeoutMs: 10_000,
      identityTestTimeoutMs: 10_000,
    });
  });

  test('the SMTP URL is checked and never shown (it may hold a password)', () => {
    const config = loadConfig({ TWOWAY_SMTP_URL: 'smtps://mailer:s3cret@mail.example:465' });
    expect(redactedConfig(config).smtpUrl).toBe('[redacted]');
    try {
      loadConfig({
        TWOWAY_SMTP_URL: 'http://mailer:s3cret@mail.example/',
        TWOWAY_LIFECYCLE_SCAN_INTERVAL_MS: '5',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as ConfigError).message;
      expect(message).toContain('TWOWAY_SMTP_URL');
      expect(message).toContain('TWOWAY_LIFECYCLE_SCAN_INTERVAL_MS');
      expect(message).not.toContain('s3cret');
    }
  });
});
