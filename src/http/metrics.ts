import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one Twoway process (a registry per app, so tests can build many). */
export interface Metrics {
  registry: Registry;
  /** Forward requests by outcome: `ok` (the remote answered) or a gateway error code. */
  forwardRequests: Counter<'outcome'>;
  /** Forward latency in seconds, from route entry to the end of the response, by outcome. */
  forwardDuration: Histogram<'outcome'>;
  /** Edge requests by outcome: `ok` (answered or proxied) or the refusal/gateway error code. */
  edgeRequests: Counter<'outcome'>;
  /** Completed edge TLS handshakes by whether a client certificate was presented (`yes`/`no`). */
  edgeHandshakes: Counter<'certificate'>;
}

/** A fresh registry with the process's default metrics and the forward and edge counters. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'twoway_process_' });
  return {
    registry,
    forwardRequests: new Counter({
      name: 'twoway_forward_requests_total',
      help: 'Forwarded requests by outcome (ok, or the Twoway-Error code)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    forwardDuration: new Histogram({
      name: 'twoway_forward_duration_seconds',
      help: 'Forward latency from request to end of response, by outcome',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    edgeRequests: new Counter({
      name: 'twoway_edge_requests_total',
      help: 'Edge listener requests by outcome (ok, or the refusal or Twoway-Error code)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    edgeHandshakes: new Counter({
      name: 'twoway_edge_handshakes_total',
      help: 'Completed edge TLS handshakes by whether the client presented a certificate',
      labelNames: ['certificate'],
      registers: [registry],
    }),
  };
}
