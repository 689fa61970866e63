import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { DAY, ManualClock, type SmtpSink, startSmtpSink } from '../helpers/lifecycle.js';
import { buildInTest, createTenant, type TestTwoway, uploadPem } from '../helpers/twoway.js';

const backends = await appBackends();
const RETRY_BASE_MS = 60_000;

describe.each(backends)('expiry e-mails to the members who own integrations on $name', (backend) => {
  let pki: TestPki;
  let env: Record<string, string>;
  const data = tempDir('twoway-people-mail-');
  const clock = new ManualClock();

  beforeAll(async () => {
    pki = await makePki();
    env = {
      ...(await backend.env()),
      TWOWAY_DATA_DIR: data.dir,
      TWOWAY_NOTIFICATION_RETRY_BASE_MS: String(RETRY_BASE_MS),
      TWOWAY_NOTIFICATION_MAX_ATTEMPTS: '4',
    };
  });

  afterAll(() => data.cleanup());

  /** A Twoway on the suite's database, sending mail to `smtp`. */
  const start = (smtp: SmtpSink) => buildInTest({ env: { ...env, TWOWAY_SMTP_URL: smtp.url }, clock });

  /** Sets up tenant `tenant`: custom roles, members, notification settings; returns its key. */
  async function people(
    twoway: TestTwoway,
    tenant: string,
    members: Record<string, { email: string; roles: string[] }>,
    settings: Record<string, unknown>,
  ): Promise<string> {
    const key = await createTenant(twoway, tenant);
    const put = async (path: string, json: unknown) => {
      const response = await twoway.call(`/v1/tenants/${tenant}${path}`, { method: 'PUT', token: key, json });
      expect(response.status, `${path}: ${await response.clone().text()}`).toBeLessThan(300);
    };
    await put('/roles/integrations', { permissions: ['connections:read', 'connections:write'] });
    await put('/roles/auditors', { permissions: ['audit:read', 'connections:read', 'identities:write'] });
    for (const [id, member] of Object.entries(members)) await put(`/members/${id}`, member);
    await put('/notification-settings', { webhookUrls: [], ...settings });
    return key;
  }

  async function upload(twoway: TestTwoway, tenant: string, key: string, days: number): Promise<void> {
    const leaf = await pki.leaf({
      cn: `${tenant}-cert`,
      notAfter: new Date(clock.now().getTime() + days * DAY),
    });
    await uploadPem(twoway, tenant, leaf, pki.intermediate.certPem, { token: key, name: 'soon' });
  }

  /** How many messages each address got. */
  const perAddress = (smtp: SmtpSink) => {
    const counts: Record<string, number> = {};
    for (const message of smtp.messages) {
      for (const to of message.to) counts[to.toLowerCase()] = (counts[to.toLowerCase()] ?? 0) + 1;
    }
    return counts;
  };

  test('admins and roles granting connections:write get the e-mail, once per person and threshold; other roles, removed and demoted members do not', async () => {
    const smtp = await startSmtpSink();
    try {
      const twoway = await start(smtp);
      const key = await people(
        twoway,
        'mail',
        {
          boss: { email: 'boss@mail.example', roles: ['admin'] },
          owner: { email: 'owner@mail.example', roles: ['integrations'] },
          // Two qualifying roles, and the same address as a settings address: still one e-mail.
          both: { email: 'Ops@Mail.example', roles: ['admin', 'integrations'] },
          auditor: { email: 'auditor@mail.example', roles: ['auditors'] },
          reader: { email: 'reader@mail.example', roles: ['viewer'] },
          gone: { email: 'gone@mail.example', roles: ['admin'] },
          demoted: { email: 'demoted@mail.example', roles: ['integrations'] },
          // Two members with one address.
          twin: { email: 'owner@MAIL.example', roles: ['admin'] },
        },
        { emails: ['ops@mail.example', 'finance@mail.example'] },
      );
      expect(
        (await twoway.call('/v1/tenants/mail/members/gone', { method: 'DELETE', token: key })).status,
      ).toBe(204);
      const demote = await twoway.call('/v1/tenants/mail/members/demoted', {
        method: 'PUT',
        token: key,
        json: { email: 'demoted@mail.example', roles: ['viewer'] },
      });
      expect(demote.status).toBe(200);
      await upload(twoway, 'mail', key, 6);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages).toHaveLength(1);
      expect(perAddress(smtp)).toEqual({
        'ops@mail.example': 1,
        'finance@mail.example': 1,
        'boss@mail.example': 1,
        'owner@mail.example': 1,
      });
      expect(smtp.messages[0]?.subject).toBe(
        '[Twoway] Certificate expires in 6 days: identity "soon" (tenant mail)',
      );

      // Again: nothing new. The next threshold (expiry) reaches the same people once more.
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages).toHaveLength(1);
      clock.advance(6 * DAY + 60_000);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages).toHaveLength(2);
      expect(Object.values(perAddress(smtp))).toEqual([2, 2, 2, 2]);
    } finally {
      await smtp.close();
    }
  });

  test('a member removed or demoted before a retry is left out of it; notifyMembers: false leaves members out', async () => {
    const smtp = await startSmtpSink({ failTimes: 1 });
    try {
      const twoway = await start(smtp);
      // No settings address at all: the members alone make the notification worth sending.
      const key = await people(
        twoway,
        'retry',
        {
          stays: { email: 'stays@retry.example', roles: ['admin'] },
          leaves: { email: 'leaves@retry.example', roles: ['admin'] },
          demoted: { email: 'demoted@retry.example', roles: ['integrations'] },
        },
        { emails: [] },
      );
      await upload(twoway, 'retry', key, 3);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages).toHaveLength(0);
      const list = async () =>
        (
          (await (await twoway.call('/v1/tenants/retry/notifications', { token: key })).json()) as {
            items: { deliveries: { target: string; status: string; attempts: unknown[] }[] }[];
          }
        ).items[0]?.deliveries[0];
      expect(await list()).toMatchObject({ status: 'pending', attempts: [expect.anything()] });
      expect((await list())?.target.split(', ').sort()).toEqual([
        'demoted@retry.example',
        'leaves@retry.example',
        'stays@retry.example',
      ]);

      await twoway.call('/v1/tenants/retry/members/leaves', { method: 'DELETE', token: key });
      await twoway.call('/v1/tenants/retry/members/demoted', {
        method: 'PUT',
        token: key,
        json: { email: 'demoted@retry.example', roles: ['auditors'] },
      });
      clock.advance(RETRY_BASE_MS);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages.map((m) => m.to)).toEqual([['stays@retry.example']]);
      expect(await list()).toMatchObject({ status: 'delivered' });

      // With notifyMembers off, only the settings' addresses.
      const settings = await twoway.call('/v1/tenants/retry/notification-settings', {
        method: 'PUT',
        token: key,
        json: { emails: ['desk@retry.example'], webhookUrls: [], notifyMembers: false },
      });
      expect(await settings.json()).toMatchObject({ notifyMembers: false, emails: ['desk@retry.example'] });
      clock.advance(3 * DAY);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages.map((m) => m.to)).toEqual([['stays@retry.example'], ['desk@retry.example']]);
      const audit = (await (
        await twoway.call('/v1/tenants/retry/audit-events?action=notification_settings.update', {
          token: key,
        })
      ).json()) as { items: { detail: { notifyMembers: boolean } }[] };
      expect(audit.items.map((e) => e.detail.notifyMembers)).toEqual([false, true]);
    } finally {
      await smtp.close();
    }
  });

  test('a delivery whose recipients are all gone before its retry is dropped, not sent to nobody', async () => {
    const smtp = await startSmtpSink({ failTimes: 1 });
    try {
      const twoway = await start(smtp);
      const key = await people(
        twoway,
        'alone',
        { only: { email: 'only@alone.example', roles: ['admin'] } },
        { emails: [] },
      );
      await upload(twoway, 'alone', key, 2);
      await twoway.lifecycle.scheduler.runOnce();
      await twoway.call('/v1/tenants/alone/members/only', { method: 'DELETE', token: key });
      clock.advance(RETRY_BASE_MS);
      await twoway.lifecycle.scheduler.runOnce();
      clock.advance(10 * RETRY_BASE_MS);
      await twoway.lifecycle.scheduler.runOnce();
      expect(smtp.messages).toEqual([]);
      const list = (await (await twoway.call('/v1/tenants/alone/notifications', { token: key })).json()) as {
        items: { deliveries: { status: string; lastError?: string; attempts: unknown[] }[] }[];
      };
      expect(list.items[0]?.deliveries[0]).toMatchObject({
        status: 'failed',
        lastError: 'no recipients left',
      });
      expect(list.items[0]?.deliveries[0]?.attempts).toHaveLength(2);
    } finally {
      await smtp.close();
    }
  });
});
