import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { DeliveryRecord, LifecycleStore } from '../store/index.js';
import type { LifecycleMetrics } from './metrics.js';
import type { EmailSender, SendResult, WebhookSender } from './notifiers.js';
import type { Recipients } from './recipients.js';
import type { ExpiryEvent } from './scanner.js';
import type { NotificationSettingsService } from './settings.js';

/** Retry policy of notification deliveries (exponential backoff, no jitter so tests can predict it). */
export interface RetryPolicy {
  /** Delay after the first failed attempt (ms); doubles after each further one. */
  baseMs: number;
  /** Cap of the delay (ms). */
  maxMs: number;
  /** Attempts in all, the first included; after the last failure the delivery is `failed`. */
  maxAttempts: number;
}

/** The delay before attempt `failed + 1` after `failed` failures: base · 2^(failed−1), capped. */
export function backoffMs(policy: RetryPolicy, failed: number): number {
  return Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failed - 1));
}

export interface DeliveryWorkerDeps {
  store: Pick<
    LifecycleStore,
    'listDueDeliveries' | 'leaseDelivery' | 'recordDeliveryAttempt' | 'getNotification'
  >;
  settings: Pick<NotificationSettingsService, 'webhookSecret'>;
  /** Undefined when no SMTP server is configured. */
  email?: EmailSender;
  /**
   * The e-mail recipients now (recipients.ts): an address of the delivery that is no longer one of
   * them (a member removed or demoted since) is left out of the attempt.
   */
  recipients?: Recipients;
  webhook: WebhookSender;
  clock: Clock;
  retry: RetryPolicy;
  /** How long a leased delivery is hidden from other workers while one attempt runs (ms). */
  leaseMs: number;
  metrics: LifecycleMetrics;
  logger: Logger;
}

const BATCH = 50;
const CONCURRENCY = 8;

/**
 * Sends due deliveries, one attempt each, and records every attempt. A delivery is first leased
 * (its due time moved past the attempt, atomically), so two workers never send it twice; a worker
 * that dies mid-attempt leaves it due again after the lease. Failures are retried with exponential
 * backoff ({@link backoffMs}) up to `maxAttempts`; every try is stored (`notification_attempts`).
 */
export class DeliveryWorker {
  readonly #deps: DeliveryWorkerDeps;

  constructor(deps: DeliveryWorkerDeps) {
    this.#deps = deps;
  }

  /** Attempts every delivery due now; returns how many attempts were made. */
  async processDue(): Promise<number> {
    let attempted = 0;
    for (let round = 0; round < 20; round++) {
      const due = await this.#deps.store.listDueDeliveries(this.#deps.clock.now(), BATCH);
      if (due.length === 0) break;
      let next = 0;
      const work = async () => {
        while (next < due.length) {
          const delivery = due[next++];
          if (delivery && (await this.#attempt(delivery))) attempted += 1;
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, work));
    }
    return attempted;
  }

  async #attempt(delivery: DeliveryRecord): Promise<boolean> {
    const { store, clock, retry, metrics, logger } = this.#deps;
    const at = clock.now();
    if (!delivery.nextAttemptAt) return false;
    const leased = await store.leaseDelivery(
      delivery.tenantId,
      delivery.id,
      delivery.nextAttemptAt,
      new Date(at.getTime() + this.#deps.leaseMs),
    );
    if (!leased) return false;
    const started = performance.now();
    let result: SendResult;
    try {
      result = await this.#send(delivery, at);
    } catch (err) {
      logger.error({ err, deliveryId: delivery.id }, 'notification delivery failed unexpectedly');
      result = { ok: false, error: 'internal error' };
    }
    const attempt = delivery.attempts + 1;
    const durationMs = performance.now() - started;
    metrics.deliveries.inc({ channel: delivery.channel, outcome: result.ok ? 'ok' : 'error' });
    const record = {
      deliveryId: delivery.id,
      attempt,
      at,
      ok: result.ok,
      durationMs,
      ...(result.statusCode !== undefined ? { statusCode: result.statusCode } : {}),
      ...(result.error !== undefined ? { error: result.error } : {}),
    };
    const log = { tenantId: delivery.tenantId, deliveryId: delivery.id, channel: delivery.channel, attempt };
    if (result.ok) {
      await store.recordDeliveryAttempt(delivery.tenantId, record, { status: 'delivered', deliveredAt: at });
      logger.info(log, 'notification delivered');
    } else if (attempt >= retry.maxAttempts || result.final === true) {
      await store.recordDeliveryAttempt(delivery.tenantId, record, {
        status: 'failed',
        ...(result.error ? { lastError: result.error } : {}),
      });
      // Nobody left to tell (every recipient removed since) is no fault to act on.
      if (result.final === true)
        logger.info({ ...log, error: result.error }, 'notification delivery dropped');
      else logger.error({ ...log, error: result.error }, 'notification delivery gave up');
    } else {
      const nextAttemptAt = new Date(at.getTime() + backoffMs(retry, attempt));
      await store.recordDeliveryAttempt(delivery.tenantId, record, {
        status: 'pending',
        nextAttemptAt,
        ...(result.error ? { lastError: result.error } : {}),
      });
      logger.warn({ ...log, error: result.error, nextAttemptAt }, 'notification delivery failed, will retry');
    }
    return true;
  }

  async #send(delivery: DeliveryRecord, at: Date): Promise<SendResult> {
    const notification = await this.#deps.store.getNotification(delivery.tenantId, delivery.notificationId);
    if (!notification) return { ok: false, error: 'notification missing' };
    const event = JSON.parse(notification.payload) as ExpiryEvent;
    if (delivery.channel === 'email') {
      if (!this.#deps.email) return { ok: false, error: 'no SMTP server configured' };
      let to = delivery.target
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean);
      if (this.#deps.recipients) {
        const current = new Set((await this.#deps.recipients(delivery.tenantId)).map((a) => a.toLowerCase()));
        to = to.filter((address) => current.has(address.toLowerCase()));
      }
      if (to.length === 0) return { ok: false, error: 'no recipients left', final: true };
      return this.#deps.email.send(to, event);
    }
    const secret = await this.#deps.settings.webhookSecret(delivery.tenantId);
    return this.#deps.webhook.send(delivery.target, event, notification.payload, secret, at);
  }
}
