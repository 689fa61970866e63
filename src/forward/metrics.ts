import { Gauge, type Registry } from 'prom-client';
import type { DispatcherCache } from './dispatchers.js';

/**
 * `twoway_forward_pools{state}`: identity-version connection pools (undici Agents) that are live or
 * retired and still draining, read at scrape time. Memory follows this number, not the tenant count.
 */
export function registerForwardGauges(registry: Registry, dispatchers: DispatcherCache): void {
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
