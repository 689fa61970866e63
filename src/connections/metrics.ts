import { Counter, type Registry } from 'prom-client';

/** Prometheus counters of connection forwards, in the app's registry. */
export interface ConnectionMetrics {
  /**
   * Forwards whose `Twoway-Identity` named the identity to present, by the route it overrode
   * (`mapping` or `connection`); counted, not audited (API.md "Connections").
   */
  identityOverrides: Counter<'route'>;
  /** OAuth token requests sent to token endpoints, by outcome: `ok` or the failure reason. */
  tokenRequests: Counter<'outcome'>;
}

/** Registers `twoway_forward_identity_overrides_total` and `twoway_oauth_token_requests_total`. */
export function createConnectionMetrics(registry: Registry): ConnectionMetrics {
  return {
    identityOverrides: new Counter({
      name: 'twoway_forward_identity_overrides_total',
      help: 'Forwards that presented the identity named by Twoway-Identity, by the route they overrode',
      labelNames: ['route'],
      registers: [registry],
    }),
    tokenRequests: new Counter({
      name: 'twoway_oauth_token_requests_total',
      help: 'OAuth 2.0 client-credentials token requests by outcome (ok, or the failure reason)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
