/**
 * lifecycle/: expiry scan, alerts, notifications (e-mail, signed webhooks), scheduled activation and
 * the audit log. {@link createLifecycle} wires the scheduler for `twoway serve` (main.ts).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { IdentityService } from '../identities/service.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import type { LifecycleStore } from '../store/index.js';
import type { AuditService } from './audit.js';
import { DeliveryWorker, type RetryPolicy } from './deliveries.js';
import { createLifecycleMetrics } from './metrics.js';
import { type EmailSender, smtpEmailSender, undiciWebhookSender } from './notifiers.js';
import { expiryRecipients } from './recipients.js';
import { ExpiryScanner } from './scanner.js';
import { LifecycleScheduler, type LifecycleSchedulerDeps } from './scheduler.js';
import type { NotificationSettingsService } from './settings.js';
import type { ExpiringSource } from './sources.js';

export { AuditService } from './audit.js';
export { NotificationSettingsService } from './settings.js';
export {
  clientCertificateSource,
  type ExpiringObject,
  type ExpiringSource,
  identitySource,
} from './sources.js';

/** The settings of the lifecycle (a slice of Config). */
export interface LifecycleOptions {
  smtpUrl?: string | undefined;
  smtpFrom: string;
  scanIntervalMs: number;
  retry: RetryPolicy;
  notificationTimeoutMs: number;
  /** TWOWAY_FORWARD_ALLOW_PRIVATE: webhooks follow the forward's SSRF rules. */
  allowPrivate: boolean;
}

export interface LifecycleDeps {
  store: LifecycleStore & LifecycleSchedulerDeps['store'];
  tenants: { listTenants(): Promise<{ id: string }[]> };
  identities: Pick<IdentityService, 'activateVersion' | 'get'>;
  settings: NotificationSettingsService;
  audit: AuditService;
  changes: ChangeBus;
  sources: readonly ExpiringSource[];
  clock: Clock;
  logger: Logger;
  registry: Registry;
  options: LifecycleOptions;
  /** Members whose roles own integrations (people/service.ts), for `notifyMembers`. */
  integrationOwners?: (tenantId: string) => Promise<string[]>;
}

/** The running lifecycle of one process. */
export interface Lifecycle {
  scheduler: LifecycleScheduler;
  scanner: ExpiryScanner;
  deliveries: DeliveryWorker;
  /** Stops the scheduler (waits for a running tick) and closes the SMTP and webhook clients. */
  close(): Promise<void>;
}

/**
 * Wires the lifecycle of one process: e-mail (when TWOWAY_SMTP_URL is set) and webhook senders, the
 * expiry scanner, the delivery worker and the scheduler (not started: call `scheduler.start()`).
 */
export function createLifecycle(deps: LifecycleDeps): Lifecycle {
  const { options } = deps;
  const logger = deps.logger.child({ module: 'lifecycle' });
  const metrics = createLifecycleMetrics(deps.registry);
  const email: EmailSender | undefined = options.smtpUrl
    ? smtpEmailSender({
        smtpUrl: options.smtpUrl,
        from: options.smtpFrom,
        timeoutMs: options.notificationTimeoutMs,
      })
    : undefined;
  if (!email)
    logger.info('no SMTP server configured (TWOWAY_SMTP_URL): expiry notifications go to webhooks only');
  const webhook = undiciWebhookSender({
    allowPrivate: options.allowPrivate,
    timeoutMs: options.notificationTimeoutMs,
  });
  const recipients = expiryRecipients(deps.settings, deps.integrationOwners);
  const scanner = new ExpiryScanner({
    recipients,
    store: deps.store,
    tenants: deps.tenants,
    sources: deps.sources,
    settings: deps.settings,
    metrics,
    clock: deps.clock,
    emailEnabled: email !== undefined,
    logger,
  });
  const deliveries = new DeliveryWorker({
    recipients,
    store: deps.store,
    settings: deps.settings,
    ...(email ? { email } : {}),
    webhook,
    clock: deps.clock,
    retry: options.retry,
    leaseMs: Math.max(60_000, options.notificationTimeoutMs * 3),
    metrics,
    logger,
  });
  const scheduler = new LifecycleScheduler({
    store: deps.store,
    identities: deps.identities,
    scanner,
    deliveries,
    audit: deps.audit,
    changes: deps.changes,
    clock: deps.clock,
    scanIntervalMs: options.scanIntervalMs,
    logger,
  });
  return {
    scheduler,
    scanner,
    deliveries,
    async close() {
      await scheduler.stop();
      email?.close();
      await webhook.close();
    },
  };
}
