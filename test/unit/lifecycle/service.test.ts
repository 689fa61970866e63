import { describe, expect, test } from 'vitest';
import { LifecycleService } from '../../../src/lifecycle/service.js';
import type { AlertRecord, NotificationWithDeliveries, Page, PageRequest } from '../../../src/store/index.js';

const DAY = 86_400_000;
const now = new Date('2030-01-01T00:00:00Z');
const clock = { now: () => now };

/** One page holding `items`, the whole list. */
function onePage<T>(items: T[]): Page<T> {
  return { items, cursorAfter: (i) => `after-${i}` };
}

/** A store that answers what it was given, and records which tenant and page it was asked for. */
function fakeStore(alerts: AlertRecord[], rows: NotificationWithDeliveries[]) {
  const asked: unknown[] = [];
  return {
    asked,
    store: {
      async listAlerts(tenantId: string, request: PageRequest) {
        asked.push(['alerts', tenantId, request.limit]);
        return onePage(alerts);
      },
      async listNotifications(tenantId: string, request: PageRequest) {
        asked.push(['notifications', tenantId, request.limit]);
        return onePage(rows);
      },
    },
  };
}

describe('lifecycle service', () => {
  test('alerts carry whole days left from the injected clock, instants as RFC 3339', async () => {
    const { store, asked } = fakeStore(
      [
        {
          tenantId: 'acme',
          objectType: 'identity',
          objectId: 'idn_1',
          objectVersion: '2',
          kind: 'expiring',
          name: 'client',
          fingerprintSha256: 'ab',
          notAfter: new Date(now.getTime() + 2.5 * DAY),
          thresholdDays: 7,
          raisedAt: new Date(now.getTime() - DAY),
        },
      ],
      [],
    );
    const { items: alerts } = await new LifecycleService({ store, clock }).listAlerts('acme', { limit: 100 });
    expect(asked).toEqual([['alerts', 'acme', 100]]);
    expect(alerts).toEqual([
      {
        kind: 'expiring',
        objectType: 'identity',
        objectId: 'idn_1',
        objectVersion: '2',
        name: 'client',
        fingerprintSha256: 'ab',
        notAfter: '2030-01-03T12:00:00.000Z',
        daysLeft: 3,
        thresholdDays: 7,
        raisedAt: '2029-12-31T00:00:00.000Z',
      },
    ]);
  });

  test('notifications: each delivery with its own attempts; nextAttemptAt only while pending', async () => {
    const base = { tenantId: 'acme', notificationId: 'ntf_1', createdAt: now, updatedAt: now };
    const { store, asked } = fakeStore(
      [],
      [
        {
          notification: {
            id: 'ntf_1',
            tenantId: 'acme',
            objectType: 'identity',
            objectId: 'idn_1',
            objectVersion: '1',
            thresholdDays: 7,
            kind: 'expiring',
            notAfter: new Date(now.getTime() + 7 * DAY),
            payload: '{}',
            createdAt: now,
          },
          deliveries: [
            {
              ...base,
              id: 'dlv_mail',
              channel: 'email',
              target: 'ops@acme.example',
              status: 'delivered',
              attempts: 1,
              nextAttemptAt: now,
              deliveredAt: now,
            },
            {
              ...base,
              id: 'dlv_hook',
              channel: 'webhook',
              target: 'https://hooks.acme.example/',
              status: 'pending',
              attempts: 1,
              nextAttemptAt: new Date(now.getTime() + 60_000),
              lastError: 'HTTP 503',
            },
          ],
          attempts: [
            { deliveryId: 'dlv_hook', attempt: 1, at: now, ok: false, statusCode: 503, durationMs: 12.6 },
            { deliveryId: 'dlv_mail', attempt: 1, at: now, ok: true, durationMs: 3.2 },
          ],
        },
      ],
    );
    const {
      items: [notification],
    } = await new LifecycleService({ store, clock }).listNotifications('acme', { limit: 20 });
    expect(asked).toEqual([['notifications', 'acme', 20]]);
    expect(notification?.deliveries).toEqual([
      {
        id: 'dlv_mail',
        channel: 'email',
        target: 'ops@acme.example',
        status: 'delivered',
        attempts: [{ attempt: 1, at: now.toISOString(), ok: true, durationMs: 3 }],
        deliveredAt: now.toISOString(),
      },
      {
        id: 'dlv_hook',
        channel: 'webhook',
        target: 'https://hooks.acme.example/',
        status: 'pending',
        attempts: [{ attempt: 1, at: now.toISOString(), ok: false, durationMs: 13, statusCode: 503 }],
        nextAttemptAt: '2030-01-01T00:01:00.000Z',
        lastError: 'HTTP 503',
      },
    ]);
    expect(notification).toMatchObject({ id: 'ntf_1', notAfter: '2030-01-08T00:00:00.000Z' });
  });
});
