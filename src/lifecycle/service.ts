import type { Static } from '@sinclair/typebox';
import type { Clock } from '../shared/clock.js';
import { type Collection, viewPage } from '../shared/paging.js';
import type { AlertRecord, LifecycleStore, NotificationWithDeliveries, PageRequest } from '../store/index.js';
import { daysLeft } from './scanner.js';
import type { AlertSchema, NotificationSchema } from './schemas.js';

/** A current expiry alert as the API shows it (`GET .../alerts`). */
export type AlertView = Static<typeof AlertSchema>;
/** An expiry notification with its deliveries and their attempts (`GET .../notifications`). */
export type NotificationView = Static<typeof NotificationSchema>;

export interface LifecycleServiceDeps {
  store: Pick<LifecycleStore, 'listAlerts' | 'listNotifications'>;
  clock: Clock;
}

/**
 * What the lifecycle shows a tenant: the alerts the expiry scanner raised (with whole days left,
 * from the injected clock) and the notifications sent for them, with every delivery attempt.
 * Read-only; the scanner and the delivery worker write these.
 */
export class LifecycleService {
  readonly #deps: LifecycleServiceDeps;

  constructor(deps: LifecycleServiceDeps) {
    this.#deps = deps;
  }

  /**
   * One page of the unresolved alerts, soonest notAfter first; `daysLeft` as {@link daysLeft} counts
   * it. @throws AppError `invalid_cursor`
   */
  async listAlerts(tenantId: string, request: PageRequest): Promise<Collection<AlertView>> {
    const now = this.#deps.clock.now();
    const page = await this.#deps.store.listAlerts(tenantId, request);
    return viewPage(page, (alerts) => alerts.map((a) => alertView(a, now)));
  }

  /**
   * One page of the notifications, newest first, each with its deliveries; a delivery shows
   * `nextAttemptAt` only while it is pending, and its attempts in order, durations in whole ms.
   * @throws AppError `invalid_cursor`
   */
  async listNotifications(tenantId: string, request: PageRequest): Promise<Collection<NotificationView>> {
    const page = await this.#deps.store.listNotifications(tenantId, request);
    return viewPage(page, (rows) => rows.map(notificationView));
  }
}

function alertView(a: AlertRecord, now: Date): AlertView {
  return {
    kind: a.kind,
    objectType: a.objectType,
    objectId: a.objectId,
    objectVersion: a.objectVersion,
    name: a.name,
    fingerprintSha256: a.fingerprintSha256,
    notAfter: a.notAfter.toISOString(),
    daysLeft: daysLeft(a.notAfter, now),
    thresholdDays: a.thresholdDays,
    raisedAt: a.raisedAt.toISOString(),
  };
}

function notificationView({
  notification: n,
  deliveries,
  attempts,
}: NotificationWithDeliveries): NotificationView {
  return {
    id: n.id,
    kind: n.kind,
    objectType: n.objectType,
    objectId: n.objectId,
    objectVersion: n.objectVersion,
    thresholdDays: n.thresholdDays,
    notAfter: n.notAfter.toISOString(),
    createdAt: n.createdAt.toISOString(),
    deliveries: deliveries.map((d) => ({
      id: d.id,
      channel: d.channel,
      target: d.target,
      status: d.status,
      attempts: attempts
        .filter((a) => a.deliveryId === d.id)
        .map((a) => ({
          attempt: a.attempt,
          at: a.at.toISOString(),
          ok: a.ok,
          durationMs: Math.round(a.durationMs),
          ...(a.statusCode !== undefined ? { statusCode: a.statusCode } : {}),
          ...(a.error !== undefined ? { error: a.error } : {}),
        })),
      ...(d.status === 'pending' && d.nextAttemptAt ? { nextAttemptAt: d.nextAttemptAt.toISOString() } : {}),
      ...(d.deliveredAt ? { deliveredAt: d.deliveredAt.toISOString() } : {}),
      ...(d.lastError ? { lastError: d.lastError } : {}),
    })),
  };
}
