import { Gauge, type Registry } from 'prom-client';
import type { DispatcherCache } from './dispatchers.js';
import type { RuntimeService } from './service.js';

/**
 * Registers, in `registry`, `twoway_forward_pools{state}` (identity-version connection pools, undici
 * Agents, that are live or retired and still draining, from `dispatchers`) and
 * `twoway_forward_tls_contexts` (cached TLS client contexts, `runtime.credentialCount`). Both are
 * read at scrape time; memory follows them, not the tenant count (idle pools close after
 * TWOWAY_FORWARD_IDLE_AGENT_TTL_MS and take their context along).
 */
export function registerForwardGauges(
  registry: Registry,
  dispatchers: DispatcherCache,
  runtime: Pick<RuntimeService, 'credentialCount'>,
): void {
  new Gauge({
    name: 'twoway_forward_tls_contexts',
    help: 'TLS client contexts held for forwards (one per identity version and trust-anchor set in use)',
    registers: [registry],
    collect() {
      this.set(runtime.credentialCount);
    },
  });
  new Gauge({
    name: 'twoway_forward_pools',
    help: 'Forward connection pools (one per identity version in use) by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.set({ state: 'live' }, dispatchers.size);
      this.set({ state: 'draining' }, dispatchers.drainingCount);
    },
  });
}
