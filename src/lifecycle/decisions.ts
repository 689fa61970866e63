/**
 * Notifications of the operator's decisions on CSRs (`TWOWAY_CSR_APPROVAL=manual`): an e-mail and a
 * signed webhook to the tenant's notification settings, through the same notifications, deliveries
 * and retries as the expiry alerts (deliveries.ts).
 */
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import type { LifecycleStore } from '../store/index.js';
import { deliveryRecords } from './scanner.js';
import type { NotificationSettingsService } from './settings.js';

/** The JSON body of a CSR decision webhook (and the facts its e-mail shows). */
export interface CsrDecisionEvent {
  id: string;
  type: 'certificate_signing_request.approved' | 'certificate_signing_request.rejected';
  createdAt: string;
  tenant: string;
  data: {
    objectType: 'certificate_signing_request';
    objectId: string;
    name: string;
    /** RFC 4514 subject of the CSR. */
    subject: string;
    /** The certificate issued on approval. */
    clientCertificateId?: string;
    fingerprintSha256?: string;
    notAfter?: string;
    /** The operator's reason for a rejection. */
    reason?: string;
  };
}

export interface DecisionNotifierDeps {
  store: Pick<LifecycleStore, 'claimNotification'>;
  settings: Pick<NotificationSettingsService, 'get'>;
  /** False without TWOWAY_SMTP_URL: webhooks only. */
  emailEnabled: boolean;
  /** The lifecycle scheduler delivers soon after a change is announced. */
  changes: ChangeBus;
  clock: Clock;
}

/** Queues the e-mail and webhooks of one CSR decision for the tenant. */
export class DecisionNotifier {
  readonly #deps: DecisionNotifierDeps;

  constructor(deps: DecisionNotifierDeps) {
    this.#deps = deps;
  }

  /**
   * Stores the notification and its deliveries (none when the tenant set no e-mail address and no
   * webhook URL) and wakes the delivery worker. Returns the event id, or undefined when there was
   * nobody to tell.
   */
  async notify(
    tenantId: string,
    type: CsrDecisionEvent['type'],
    data: Omit<CsrDecisionEvent['data'], 'objectType'>,
  ): Promise<string | undefined> {
    const { store, settings, clock, changes } = this.#deps;
    const now = clock.now();
    const view = await settings.get(tenantId);
    const deliveries = deliveryRecords(
      this.#deps.emailEnabled ? view.emails : [],
      view.webhookUrls,
      tenantId,
      now,
    );
    if (deliveries.length === 0) return undefined;
    const event: CsrDecisionEvent = {
      id: newId('evt'),
      type,
      createdAt: now.toISOString(),
      tenant: tenantId,
      data: { objectType: 'certificate_signing_request', ...data },
    };
    await store.claimNotification(
      tenantId,
      {
        id: event.id,
        tenantId,
        objectType: 'certificate_signing_request',
        objectId: data.objectId,
        objectVersion: '1',
        thresholdDays: 0,
        kind: 'decision',
        notAfter: data.notAfter ? new Date(data.notAfter) : now,
        payload: JSON.stringify(event),
        createdAt: now,
      },
      deliveries,
    );
    await changes.emit({ tenantId, kind: 'client_certificate', id: data.objectId });
    return event.id;
  }
}
