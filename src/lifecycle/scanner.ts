import type { Logger } from 'pino';
import { DAY_MS } from '../certificates/index.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import type {
  AlertKind,
  AlertRecord,
  DeliveryRecord,
  LifecycleStore,
  NotificationRecord,
} from '../store/index.js';
import type { LifecycleMetrics } from './metrics.js';
import type { Recipients } from './recipients.js';
import type { NotificationSettingsService } from './settings.js';
import type { ExpiringObject, ExpiringSource } from './sources.js';

/** The JSON body of an expiry webhook (and the facts an e-mail shows). */
export interface ExpiryEvent {
  id: string;
  type: 'certificate.expiring' | 'certificate.expired';
  createdAt: string;
  tenant: string;
  /** The object's facts ({@link ExpiringObject} less the tenant, `notAfter` as RFC 3339). */
  data: Omit<ExpiringObject, 'tenantId' | 'notAfter'> & {
    notAfter: string;
    /** Whole days left, rounded up; negative once expired. */
    daysLeft: number;
    /** The threshold crossed (days); 0 for `certificate.expired`. */
    thresholdDays: number;
  };
}

/** What one scan found and did. */
export interface ScanSummary {
  tenants: number;
  objects: number;
  alerts: number;
  /** Notifications claimed (each is then delivered once per channel). */
  notified: number;
}

/** Whole days from `now` to `notAfter`: rounded up while valid, down (negative) once past. */
export function daysLeft(notAfter: Date, now: Date): number {
  const ms = notAfter.getTime() - now.getTime();
  return ms >= 0 ? Math.ceil(ms / DAY_MS) : Math.floor(ms / DAY_MS);
}

/**
 * The alert (if any) for one certificate: `expired` past notAfter, `expiring` within the first
 * (largest) threshold, with the smallest threshold it is within as `thresholdDays`.
 */
export function alertFor(
  object: ExpiringObject,
  thresholdsDays: readonly number[],
  now: Date,
): { kind: AlertKind; thresholdDays: number } | undefined {
  const left = object.notAfter.getTime() - now.getTime();
  if (left < 0) return { kind: 'expired', thresholdDays: 0 };
  const crossed = thresholdsDays.filter((days) => left <= days * DAY_MS);
  if (crossed.length === 0) return undefined;
  return { kind: 'expiring', thresholdDays: Math.min(...crossed) };
}

export interface ExpiryScannerDeps {
  store: Pick<LifecycleStore, 'syncAlerts' | 'claimNotification'>;
  tenants: { listTenants(): Promise<{ id: string }[]> };
  /** Where certificates come from; one entry per object type. */
  sources: readonly ExpiringSource[];
  settings: Pick<NotificationSettingsService, 'settings'>;
  metrics: LifecycleMetrics;
  clock: Clock;
  /** False when no SMTP server is configured: e-mail deliveries are then not created. */
  emailEnabled: boolean;
  /** The e-mail recipients now (recipients.ts); default: the settings' `emails`. */
  recipients?: Recipients;
  logger: Logger;
}

/**
 * The expiry scan. For each tenant and each watched certificate it computes the alert (expiring
 * within a threshold, or expired), makes the stored alerts match, updates the gauges, and (with
 * `notify`) claims one notification per object, version and threshold, with one pending delivery
 * per channel (one e-mail to all the tenant's recipients, one POST per webhook URL). Claiming is a
 * unique insert (LifecycleStore.claimNotification), so a restart or a second process never sends
 * the same notification again. When several thresholds are crossed at once (a certificate uploaded
 * 3 days before expiry with thresholds [30, 7]) one notification goes out, for the smallest.
 * A tenant with no address and no URL gets alerts but no notification is claimed, so an address
 * added later still hears about the threshold already crossed.
 */
export class ExpiryScanner {
  readonly #deps: ExpiryScannerDeps;
  /** Label sets of the not-after gauge per tenant, so a rescan can drop the ones gone. */
  readonly #series = new Map<string, { kind: string; id: string }[]>();
  readonly #alertCounts = new Map<string, Record<AlertKind, number>>();

  constructor(deps: ExpiryScannerDeps) {
    this.#deps = deps;
  }

  /** Scans every tenant; a tenant that fails is logged and skipped. */
  async scanAll(options: { notify: boolean }): Promise<ScanSummary> {
    const summary: ScanSummary = { tenants: 0, objects: 0, alerts: 0, notified: 0 };
    const tenants = await this.#deps.tenants.listTenants();
    const seen = new Set<string>();
    for (const tenant of tenants) {
      seen.add(tenant.id);
      try {
        const one = await this.scanTenant(tenant.id, options);
        summary.tenants += 1;
        summary.objects += one.objects;
        summary.alerts += one.alerts;
        summary.notified += one.notified;
      } catch (err) {
        this.#deps.logger.error({ err, tenantId: tenant.id }, 'expiry scan of tenant failed');
      }
    }
    for (const tenantId of [...this.#series.keys()]) if (!seen.has(tenantId)) this.#forgetTenant(tenantId);
    return summary;
  }

  /** Scans one tenant (after a change to it, or as part of {@link scanAll}). */
  async scanTenant(tenantId: string, options: { notify: boolean }): Promise<ScanSummary> {
    const { store, sources, settings: settingsService, clock } = this.#deps;
    const now = clock.now();
    const settings = await settingsService.settings(tenantId);
    const objects = (await Promise.all(sources.map((s) => s.list(tenantId)))).flat();
    const alerts: { object: ExpiringObject; record: Omit<AlertRecord, 'raisedAt'> }[] = [];
    for (const object of objects) {
      const alert = alertFor(object, settings.thresholdsDays, now);
      if (!alert) continue;
      alerts.push({
        object,
        record: {
          tenantId,
          objectType: object.objectType,
          objectId: object.objectId,
          objectVersion: object.objectVersion,
          kind: alert.kind,
          name: object.name,
          fingerprintSha256: object.fingerprintSha256,
          notAfter: object.notAfter,
          thresholdDays: alert.thresholdDays,
        },
      });
    }
    await store.syncAlerts(
      tenantId,
      alerts.map((a) => a.record),
      now,
    );
    this.#updateGauges(
      tenantId,
      objects,
      alerts.map((a) => a.record.kind),
    );

    let notified = 0;
    if (options.notify && alerts.length > 0) {
      const emails = this.#deps.recipients ? await this.#deps.recipients(tenantId) : settings.emails;
      for (const { object, record } of alerts) {
        const deliveries = this.#deliveries(emails, settings.webhookUrls, tenantId, now);
        if (deliveries.length === 0) continue;
        const event: ExpiryEvent = {
          id: newId('evt'),
          type: record.kind === 'expired' ? 'certificate.expired' : 'certificate.expiring',
          createdAt: now.toISOString(),
          tenant: tenantId,
          data: {
            objectType: object.objectType,
            objectId: object.objectId,
            objectVersion: object.objectVersion,
            name: object.name,
            subject: object.subject,
            fingerprintSha256: object.fingerprintSha256,
            notAfter: object.notAfter.toISOString(),
            daysLeft: daysLeft(object.notAfter, now),
            thresholdDays: record.thresholdDays,
          },
        };
        const notification: NotificationRecord = {
          id: event.id,
          tenantId,
          objectType: object.objectType,
          objectId: object.objectId,
          objectVersion: object.objectVersion,
          thresholdDays: record.thresholdDays,
          kind: record.kind,
          notAfter: object.notAfter,
          payload: JSON.stringify(event),
          createdAt: now,
        };
        if (await store.claimNotification(tenantId, notification, deliveries)) {
          notified += 1;
          this.#deps.logger.info(
            {
              tenantId,
              objectType: object.objectType,
              objectId: object.objectId,
              version: object.objectVersion,
              fingerprintSha256: object.fingerprintSha256,
              notAfter: object.notAfter,
              thresholdDays: record.thresholdDays,
              eventId: event.id,
            },
            'expiry notification queued',
          );
        }
      }
    }
    return { tenants: 1, objects: objects.length, alerts: alerts.length, notified };
  }

  /**
   * Drops every expiry gauge series of this process: another process ran the latest full scan, and
   * its figures are the current ones (this process's would only go stale).
   */
  forgetGauges(): void {
    for (const tenantId of [...this.#series.keys()]) this.#forgetTenant(tenantId);
  }

  #deliveries(emails: string[], webhookUrls: string[], tenantId: string, now: Date): DeliveryRecord[] {
    const base = {
      tenantId,
      notificationId: '',
      status: 'pending' as const,
      attempts: 0,
      nextAttemptAt: now,
    };
    const list: DeliveryRecord[] = [];
    if (this.#deps.emailEnabled && emails.length > 0) {
      list.push({
        ...base,
        id: newId('dlv'),
        channel: 'email',
        target: emails.join(', '),
        createdAt: now,
        updatedAt: now,
      });
    }
    for (const url of webhookUrls) {
      list.push({
        ...base,
        id: newId('dlv'),
        channel: 'webhook',
        target: url,
        createdAt: now,
        updatedAt: now,
      });
    }
    return list;
  }

  #updateGauges(tenantId: string, objects: ExpiringObject[], kinds: AlertKind[]): void {
    const { notAfter, alerts } = this.#deps.metrics;
    for (const labels of this.#series.get(tenantId) ?? []) notAfter.remove({ tenant: tenantId, ...labels });
    const series = objects.map((o) => ({ kind: o.objectType, id: o.objectId }));
    for (const o of objects) {
      notAfter.set(
        { tenant: tenantId, kind: o.objectType, id: o.objectId },
        Math.floor(o.notAfter.getTime() / 1000),
      );
    }
    this.#series.set(tenantId, series);
    this.#alertCounts.set(tenantId, {
      expiring: kinds.filter((k) => k === 'expiring').length,
      expired: kinds.filter((k) => k === 'expired').length,
    });
    this.#publishAlertCounts(alerts);
  }

  #forgetTenant(tenantId: string): void {
    for (const labels of this.#series.get(tenantId) ?? [])
      this.#deps.metrics.notAfter.remove({ tenant: tenantId, ...labels });
    this.#series.delete(tenantId);
    this.#alertCounts.delete(tenantId);
    this.#publishAlertCounts(this.#deps.metrics.alerts);
  }

  #publishAlertCounts(gauge: LifecycleMetrics['alerts']): void {
    const total: Record<AlertKind, number> = { expiring: 0, expired: 0 };
    for (const counts of this.#alertCounts.values()) {
      total.expiring += counts.expiring;
      total.expired += counts.expired;
    }
    gauge.set({ kind: 'expiring' }, total.expiring);
    gauge.set({ kind: 'expired' }, total.expired);
  }
}
