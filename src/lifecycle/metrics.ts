import { Counter, Gauge, type Registry } from 'prom-client';

/** Prometheus metrics of the lifecycle, registered in the app's registry (http/metrics.ts). */
export interface LifecycleMetrics {
  /** notAfter of every watched certificate, Unix seconds, by tenant, kind (object type) and object id. */
  notAfter: Gauge<'tenant' | 'kind' | 'id'>;
  /** Current alerts by kind (`expiring`, `expired`), all tenants. */
  alerts: Gauge<'kind'>;
  /** Notification delivery attempts by channel and outcome (`ok`, `error`). */
  deliveries: Counter<'channel' | 'outcome'>;
}

export function createLifecycleMetrics(registry: Registry): LifecycleMetrics {
  return {
    notAfter: new Gauge({
      name: 'twoway_certificate_not_after_seconds',
      help: 'notAfter of each watched certificate (Unix seconds), by tenant, kind and object id',
      labelNames: ['tenant', 'kind', 'id'],
      registers: [registry],
    }),
    alerts: new Gauge({
      name: 'twoway_certificate_alerts',
      help: 'Current certificate expiry alerts by kind (expiring, expired)',
      labelNames: ['kind'],
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'twoway_notification_delivery_attempts_total',
      help: 'Notification delivery attempts by channel (email, webhook) and outcome (ok, error)',
      labelNames: ['channel', 'outcome'],
      registers: [registry],
    }),
  };
}
