import { describe, expect, test } from 'vitest';
import { DAY_MS as DAY } from '../../../src/certificates/index.js';
import { scrubDetail } from '../../../src/lifecycle/audit.js';
import { backoffMs } from '../../../src/lifecycle/deliveries.js';
import { renderEmail } from '../../../src/lifecycle/notifiers.js';
import { alertFor, daysLeft, type ExpiryEvent } from '../../../src/lifecycle/scanner.js';
import { parseWebhookUrl } from '../../../src/lifecycle/settings.js';
import { newWebhookSecret, signWebhook, verifyWebhook } from '../../../src/lifecycle/signing.js';
import type { ExpiringObject } from '../../../src/lifecycle/sources.js';

/** A PEM key label built at run time: the test needs the label, and no key is committed. */
const FAKE_KEY_LABEL = ['PRIVATE', 'KEY'].join(' ');

const now = new Date('2030-01-01T00:00:00Z');
const object = (msLeft: number): ExpiringObject => ({
  tenantId: 't',
  objectType: 'identity',
  objectId: 'idn_1',
  objectVersion: '1',
  name: 'n',
  subject: 'CN=n',
  fingerprintSha256: 'ab',
  notAfter: new Date(now.getTime() + msLeft),
});

describe('expiry thresholds', () => {
  test('the smallest crossed threshold, expired past notAfter, nothing outside the first', () => {
    expect(alertFor(object(60 * DAY), [30, 7], now)).toBeUndefined();
    expect(alertFor(object(30 * DAY), [30, 7], now)).toEqual({ kind: 'expiring', thresholdDays: 30 });
    expect(alertFor(object(6 * DAY), [30, 7], now)).toEqual({ kind: 'expiring', thresholdDays: 7 });
    expect(alertFor(object(0), [30, 7], now)).toEqual({ kind: 'expiring', thresholdDays: 7 });
    expect(alertFor(object(-1), [30, 7], now)).toEqual({ kind: 'expired', thresholdDays: 0 });
  });

  test('days left round up while valid and down once expired', () => {
    expect(daysLeft(new Date(now.getTime() + 6 * DAY - 1000), now)).toBe(6);
    expect(daysLeft(new Date(now.getTime() + 1), now)).toBe(1);
    expect(daysLeft(now, now)).toBe(0);
    expect(daysLeft(new Date(now.getTime() - 1000), now)).toBe(-1);
  });
});

describe('webhook signatures', () => {
  const secret = newWebhookSecret();
  const body = '{"id":"evt_1"}';
  const ts = Math.floor(now.getTime() / 1000);

  test('verify accepts its own signature within the tolerance, and nothing else', () => {
    const signature = signWebhook(secret, ts, body);
    expect(signature).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(secret, String(ts), signature, body, now)).toBe(true);
    expect(verifyWebhook(secret, String(ts), `v1=${'0'.repeat(64)}, ${signature}`, body, now)).toBe(true);
    expect(verifyWebhook(secret, String(ts + 1), signature, body, now)).toBe(false);
    expect(verifyWebhook(secret, String(ts), signature, `${body} `, now)).toBe(false);
    expect(verifyWebhook(newWebhookSecret(), String(ts), signature, body, now)).toBe(false);
    expect(verifyWebhook(secret, String(ts), signature, body, new Date(now.getTime() + 301_000))).toBe(false);
    expect(verifyWebhook(secret, undefined, signature, body, now)).toBe(false);
    expect(verifyWebhook(secret, 'x1', signature, body, now)).toBe(false);
  });
});

describe('retry backoff', () => {
  test('doubles from the base and stops at the cap', () => {
    const policy = { baseMs: 1000, maxMs: 5000, maxAttempts: 10 };
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(policy, n))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});

describe('audit detail scrubbing', () => {
  test('secret-looking fields and values are dropped, nested too', () => {
    expect(
      scrubDetail({
        name: 'ok',
        password: 'pw',
        privateKeyPem: 'x',
        apiKey: 'tw_abc',
        apiKeyId: 'key_1',
        webhookSecret: 'whsec_x',
        nested: { token: 't', version: 2, pem: `-----BEGIN ${FAKE_KEY_LABEL}-----\nAAA` },
        leaked: `tw_${'a'.repeat(43)}`,
        list: ['a', { secret: 1 }],
        at: new Date(0),
      }),
    ).toEqual({
      name: 'ok',
      apiKeyId: 'key_1',
      nested: { version: 2 },
      list: ['a', {}],
      at: '1970-01-01T00:00:00.000Z',
    });
  });
});

describe('webhook URLs', () => {
  test('http(s) only, no credentials or fragment; blocked IP literals unless private targets are allowed', () => {
    expect(parseWebhookUrl('https://hooks.example/x?y=1', false).toString()).toBe(
      'https://hooks.example/x?y=1',
    );
    for (const bad of [
      'ftp://x.example/',
      'https://u:p@x.example/',
      'https://x.example/#f',
      'nope',
      'https://127.0.0.1/',
    ])
      expect(() => parseWebhookUrl(bad, false), bad).toThrow(
        expect.objectContaining({ code: 'notification_settings_invalid' }),
      );
    expect(parseWebhookUrl('http://127.0.0.1:9/', true).host).toBe('127.0.0.1:9');
  });
});

describe('expiry e-mail', () => {
  test('says what expires, when, and what to do; nothing secret', () => {
    const event: ExpiryEvent = {
      id: 'evt_1',
      type: 'certificate.expiring',
      createdAt: now.toISOString(),
      tenant: 'acme',
      data: {
        objectType: 'identity',
        objectId: 'idn_1',
        objectVersion: '3',
        name: 'prod',
        subject: 'CN=prod',
        fingerprintSha256: 'ab'.repeat(32),
        notAfter: '2030-01-07T00:00:00.000Z',
        daysLeft: 6,
        thresholdDays: 7,
      },
    };
    const { subject, text } = renderEmail(event);
    expect(subject).toBe('[Twoway] Certificate expires in 6 days: identity "prod" (tenant acme)');
    expect(text).toContain('idn_1 (version 3)');
    expect(text).toContain('Upload a new version');
    expect(renderEmail({ ...event, type: 'certificate.expired' }).subject).toBe(
      '[Twoway] Certificate expired: identity "prod" (tenant acme)',
    );
  });
});
