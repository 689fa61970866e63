import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { verifyWebhook } from '../../src/lifecycle/signing.js';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import {
  DAY,
  ManualClock,
  type SmtpSink,
  startSmtpSink,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../helpers/lifecycle.js';
import { buildInTest, type TestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();
const RETRY_BASE_MS = 60_000;

interface Alert {
  kind: string;
  objectType: string;
  objectId: string;
  daysLeft: number;
  thresholdDays: number;
  raisedAt: string;
  notAfter: string;
}

describe.each(backends)('expiry alerts and notifications on $name', (backend) => {
  let pki: TestPki;
  let smtp: SmtpSink;
  let env: Record<string, string>;
  const data = tempDir('twoway-lifecycle-');
  const clock = new ManualClock();

  beforeAll(async () => {
    pki = await makePki();
    smtp = await startSmtpSink();
    env = {
      ...(await backend.env()),
      // The same data folder (and database) across restarts.
      TWOWAY_DATA_DIR: data.dir,
      TWOWAY_SMTP_URL: smtp.url,
      TWOWAY_SMTP_FROM: 'Twoway Alerts <alerts@twoway.test>',
      TWOWAY_NOTIFICATION_RETRY_BASE_MS: String(RETRY_BASE_MS),
      TWOWAY_NOTIFICATION_MAX_ATTEMPTS: '4',
    };
  });

  afterAll(async () => {
    await smtp?.close();
    data.cleanup();
  });

  /** A Twoway on the suite's data folder and database, closed by stop() or when the test ends. */
  const start = () => buildInTest({ env, clock });
  const stop = (twoway: TestTwoway) => twoway.close();

  async function upload(twoway: TestTwoway, tenant: string, name: string, days: number): Promise<string> {
    const leaf = await pki.leaf({ cn: name, notAfter: new Date(clock.now().getTime() + days * DAY) });
    const response = await twoway.call(`/v1/tenants/${tenant}/identities`, {
      method: 'POST',
      json: {
        name,
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  }

  test('one e-mail per threshold crossing: 6 days out yes, 60 days out no, none again after a restart', async () => {
    let twoway = await start();
    await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'mail', name: 'Mail' } });
    const settings = await twoway.call('/v1/tenants/mail/notification-settings', {
      method: 'PUT',
      json: { emails: ['ops@mail.example', 'security@mail.example'], webhookUrls: [] },
    });
    expect(settings.status).toBe(200);
    expect(await settings.json()).toMatchObject({ thresholdsDays: [7], webhookUrls: [] });
    const soon = await upload(twoway, 'mail', 'soon', 6);
    const later = await upload(twoway, 'mail', 'later', 60);

    await twoway.lifecycle.scheduler.runOnce();
    expect(smtp.messages).toHaveLength(1);
    const [mail] = smtp.messages;
    expect(mail?.to.sort()).toEqual(['ops@mail.example', 'security@mail.example']);
    expect(mail?.from).toBe('alerts@twoway.test');
    expect(mail?.subject).toBe('[Twoway] Certificate expires in 6 days: identity "soon" (tenant mail)');
    expect(mail?.raw).toContain(soon);

    // Status, alerts and gauges agree.
    const identity = (await (await twoway.call(`/v1/tenants/mail/identities/${soon}`)).json()) as {
      status: string;
    };
    expect(identity.status).toBe('expiring');
    const alerts = (await (await twoway.call('/v1/tenants/mail/alerts')).json()) as { items: Alert[] };
    expect(alerts.items).toEqual([
      expect.objectContaining({
        kind: 'expiring',
        objectType: 'identity',
        objectId: soon,
        daysLeft: 6,
        thresholdDays: 7,
      }),
    ]);
    const metrics = await (await twoway.call('/metrics')).text();
    const notAfter = (id: string) =>
      new RegExp(
        `twoway_certificate_not_after_seconds\\{tenant="mail",kind="identity",id="${id}"\\} (\\d+)`,
      ).exec(metrics)?.[1];
    expect(Number(notAfter(soon))).toBe(Math.floor((clock.now().getTime() + 6 * DAY) / 1000));
    expect(notAfter(later)).toBeDefined();
    expect(metrics).toMatch(/twoway_certificate_alerts\{kind="expiring"\} 1\b/);

    // Again, and after a restart on the same database: nothing new.
    await twoway.lifecycle.scheduler.runOnce();
    await stop(twoway);
    twoway = await start();
    await twoway.lifecycle.scheduler.runOnce();
    expect(smtp.messages).toHaveLength(1);
    const raisedAt = (await (await twoway.call('/v1/tenants/mail/alerts')).json()) as { items: Alert[] };
    expect(raisedAt.items.map((a) => a.raisedAt)).toEqual(alerts.items.map((a) => a.raisedAt));

    // Crossing the next "threshold" (expiry) sends one more; the 60-day one stays quiet until 7 days out.
    clock.advance(6 * DAY + 60_000);
    await twoway.lifecycle.scheduler.runOnce();
    await twoway.lifecycle.scheduler.runOnce();
    expect(smtp.messages.map((m) => m.subject)).toEqual([
      expect.stringContaining('expires in 6 days'),
      '[Twoway] Certificate expired: identity "soon" (tenant mail)',
    ]);
    clock.advance(47 * DAY);
    await twoway.lifecycle.scheduler.runOnce();
    expect(smtp.messages).toHaveLength(3);
    expect(smtp.messages[2]?.subject).toBe(
      '[Twoway] Certificate expires in 7 days: identity "later" (tenant mail)',
    );
    const now = (await (await twoway.call('/v1/tenants/mail/alerts')).json()) as { items: Alert[] };
    expect(now.items.map((a) => [a.objectId, a.kind])).toEqual([
      [soon, 'expired'],
      [later, 'expiring'],
    ]);
    await stop(twoway);
  });

  test('webhooks are signed with HMAC-SHA256 over timestamp and body; a receiver that fails twice gets the event once in the end', async () => {
    let secret: string | undefined;
    const good: WebhookReceiver = await startWebhookReceiver({ secret: () => secret });
    const flaky: WebhookReceiver = await startWebhookReceiver({ failTimes: 2, secret: () => secret });
    try {
      const twoway = await start();
      await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'hooks', name: 'Hooks' } });
      const put = await twoway.call('/v1/tenants/hooks/notification-settings', {
        method: 'PUT',
        json: { emails: [], webhookUrls: [good.url, flaky.url], thresholdsDays: [14, 3] },
      });
      const { webhookSecret } = (await put.json()) as { webhookSecret: string };
      expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
      secret = webhookSecret;
      // Shown once: neither GET nor a second PUT shows it again.
      const shown = await (await twoway.call('/v1/tenants/hooks/notification-settings')).text();
      expect(shown).not.toContain(webhookSecret);
      expect(JSON.parse(shown)).toMatchObject({
        thresholdsDays: [14, 3],
        webhookSecretCreatedAt: expect.any(String),
      });

      const id = await upload(twoway, 'hooks', 'hooked', 10);
      await twoway.lifecycle.scheduler.runOnce();
      expect(good.requests).toHaveLength(1);
      expect(flaky.requests.map((r) => r.status)).toEqual([500]);

      const [request] = good.requests;
      const body = request?.body.toString('utf8') ?? '';
      const timestamp = String(request?.headers['twoway-timestamp']);
      const signature = String(request?.headers['twoway-signature']);
      // Recomputed here from the documented recipe, independently of the product's helper.
      const mac = createHmac('sha256', webhookSecret).update(`${timestamp}.${body}`).digest('hex');
      expect(signature).toBe(`v1=${mac}`);
      expect(Number(timestamp)).toBe(Math.floor(clock.now().getTime() / 1000));
      expect(verifyWebhook(webhookSecret, timestamp, signature, body, clock.now())).toBe(true);
      expect(
        verifyWebhook(webhookSecret, timestamp, signature, body.replace('hooked', 'hacked'), clock.now()),
      ).toBe(false);
      expect(verifyWebhook('whsec_wrong', timestamp, signature, body, clock.now())).toBe(false);
      const event = JSON.parse(body) as {
        id: string;
        type: string;
        tenant: string;
        data: Record<string, unknown>;
      };
      expect(event).toMatchObject({
        type: 'certificate.expiring',
        tenant: 'hooks',
        data: {
          objectType: 'identity',
          objectId: id,
          objectVersion: '1',
          name: 'hooked',
          daysLeft: 10,
          thresholdDays: 14,
        },
      });
      expect(request?.headers['twoway-event-id']).toBe(event.id);
      expect(request?.headers['content-type']).toBe('application/json');

      // Retries follow the backoff (1 min, then 2 min) on the injected clock; nothing sleeps.
      clock.advance(RETRY_BASE_MS - 1_000);
      await twoway.lifecycle.scheduler.runOnce();
      expect(flaky.requests).toHaveLength(1);
      clock.advance(1_000);
      await twoway.lifecycle.scheduler.runOnce();
      expect(flaky.requests.map((r) => r.status)).toEqual([500, 500]);
      clock.advance(2 * RETRY_BASE_MS);
      await twoway.lifecycle.scheduler.runOnce();
      clock.advance(60 * RETRY_BASE_MS);
      await twoway.lifecycle.scheduler.runOnce();
      expect(flaky.requests.map((r) => r.status)).toEqual([500, 500, 204]);
      expect(new Set(flaky.requests.map((r) => r.headers['twoway-event-id']))).toEqual(new Set([event.id]));
      expect(new Set(flaky.requests.map((r) => r.body.toString('utf8')))).toEqual(new Set([body]));
      expect(good.requests).toHaveLength(1);
      // The receivers checked every signature themselves (a bad one would have been answered 401).
      expect([...good.requests, ...flaky.requests].map((r) => r.verified)).toEqual([true, true, true, true]);

      // Every attempt is recorded.
      const notifications = (await (await twoway.call('/v1/tenants/hooks/notifications')).json()) as {
        items: {
          id: string;
          deliveries: { target: string; status: string; attempts: { ok: boolean; statusCode?: number }[] }[];
        }[];
      };
      expect(notifications.items).toHaveLength(1);
      const deliveries = notifications.items[0]?.deliveries ?? [];
      expect(deliveries.find((d) => d.target === flaky.url)).toMatchObject({
        status: 'delivered',
        attempts: [
          { ok: false, statusCode: 500 },
          { ok: false, statusCode: 500 },
          { ok: true, statusCode: 204 },
        ],
      });
      expect(deliveries.find((d) => d.target === good.url)).toMatchObject({
        status: 'delivered',
        attempts: [{ ok: true, statusCode: 204 }],
      });

      // The next threshold (3 days) is a new notification; rotating the secret changes the signature key.
      const rotated = await twoway.call('/v1/tenants/hooks/notification-settings', {
        method: 'PUT',
        json: { emails: [], webhookUrls: [good.url], thresholdsDays: [14, 3], rotateWebhookSecret: true },
      });
      const { webhookSecret: secret2 } = (await rotated.json()) as { webhookSecret: string };
      expect(secret2).not.toBe(webhookSecret);
      secret = secret2;
      clock.advance(7 * DAY);
      await twoway.lifecycle.scheduler.runOnce();
      expect(good.requests).toHaveLength(2);
      const second = good.requests[1];
      expect(second?.verified).toBe(true);
      const secondEvent = JSON.parse(second?.body.toString('utf8') ?? '{}') as {
        data: { thresholdDays: number };
      };
      expect(secondEvent.data.thresholdDays).toBe(3);
      expect(
        verifyWebhook(
          secret2,
          String(second?.headers['twoway-timestamp']),
          String(second?.headers['twoway-signature']),
          second?.body ?? '',
          clock.now(),
        ),
      ).toBe(true);
      await stop(twoway);
    } finally {
      await good.close();
      await flaky.close();
    }
  });

  test('a receiver that never succeeds is given up after the last attempt; settings are checked', async () => {
    const down = await startWebhookReceiver({ failTimes: 1_000 });
    try {
      const twoway = await start();
      await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'down', name: 'Down' } });
      await twoway.call('/v1/tenants/down/notification-settings', {
        method: 'PUT',
        json: { emails: [], webhookUrls: [down.url] },
      });
      await upload(twoway, 'down', 'doomed', 2);
      for (let i = 0; i < 6; i++) {
        await twoway.lifecycle.scheduler.runOnce();
        clock.advance(8 * RETRY_BASE_MS);
      }
      expect(down.requests).toHaveLength(4);
      const list = (await (await twoway.call('/v1/tenants/down/notifications')).json()) as {
        items: { deliveries: { status: string; lastError?: string }[] }[];
      };
      expect(list.items[0]?.deliveries[0]).toMatchObject({ status: 'failed', lastError: 'HTTP 500' });

      for (const [json, code] of [
        [{ emails: ['not an address'], webhookUrls: [] }, 'notification_settings_invalid'],
        [{ emails: [], webhookUrls: ['ftp://x.example/'] }, 'notification_settings_invalid'],
        [{ emails: [], webhookUrls: ['https://user:pw@x.example/'] }, 'notification_settings_invalid'],
        [{ emails: [], webhookUrls: [], thresholdsDays: [0] }, 'bad_request'],
        [{ emails: [], webhookUrls: [], thresholdsDays: [] }, 'bad_request'],
      ] as const) {
        const response = await twoway.call('/v1/tenants/down/notification-settings', { method: 'PUT', json });
        expect(((await response.json()) as { code: string }).code, JSON.stringify(json)).toBe(code);
      }
      await stop(twoway);
    } finally {
      await down.close();
    }
  });

  test('a client certificate added close to its expiry is alerted at once, not at the next full scan', async () => {
    const twoway = await start();
    await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'inbound', name: 'Inbound' } });
    // The start-up full scan is done; the next one is an hour away (the default interval).
    await twoway.lifecycle.scheduler.runOnce();
    const leaf = await pki.leaf({ cn: 'partner', notAfter: new Date(clock.now().getTime() + 5 * DAY) });
    const added = await twoway.call('/v1/tenants/inbound/client-certificates', {
      method: 'POST',
      json: { name: 'partner', certificatePem: leaf.certPem },
    });
    expect(added.status).toBe(201);
    const id = ((await added.json()) as { id: string }).id;
    const alerted = async () =>
      ((await (await twoway.call('/v1/tenants/inbound/alerts')).json()) as { items: Alert[] }).items;
    const deadline = Date.now() + 5_000;
    while ((await alerted()).length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await alerted()).toEqual([
      expect.objectContaining({
        objectType: 'client_certificate',
        objectId: id,
        kind: 'expiring',
        daysLeft: 5,
      }),
    ]);
    await stop(twoway);
  });

  test('the tenant\'s first threshold decides "expiring" everywhere', async () => {
    const twoway = await start();
    await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'wide', name: 'Wide' } });
    const id = await upload(twoway, 'wide', 'twenty', 20);
    await twoway.call('/v1/tenants/wide/mappings', {
      method: 'POST',
      json: { name: 'm', service: 'api', url: 'https://api.wide.example/', identityId: id },
    });
    const status = async () =>
      ((await (await twoway.call(`/v1/tenants/wide/identities/${id}`)).json()) as { status: string }).status;
    const resolved = async () =>
      (
        (await (
          await twoway.call('/v1/runtime/resolve', {
            method: 'POST',
            json: { items: [{ tenant: 'wide', service: 'api', url: 'https://api.wide.example/x' }] },
          })
        ).json()) as { items: { identityStatus?: string }[] }
      ).items[0]?.identityStatus;
    expect([await status(), await resolved()]).toEqual(['active', 'active']);
    await twoway.call('/v1/tenants/wide/notification-settings', {
      method: 'PUT',
      json: { emails: [], webhookUrls: [], thresholdsDays: [7, 30] },
    });
    expect([await status(), await resolved()]).toEqual(['expiring', 'expiring']);
    await twoway.lifecycle.scheduler.runOnce();
    const alerts = (await (await twoway.call('/v1/tenants/wide/alerts')).json()) as { items: Alert[] };
    expect(alerts.items).toEqual([
      expect.objectContaining({ objectId: id, kind: 'expiring', thresholdDays: 30 }),
    ]);
    // No address, no URL: an alert but no notification.
    expect(
      ((await (await twoway.call('/v1/tenants/wide/notifications')).json()) as { items: unknown[] }).items,
    ).toEqual([]);
    await stop(twoway);
  });
});
