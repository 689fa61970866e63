import { AppError } from '../errors/app-error.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Tenant, TenantStore } from '../store/index.js';

/**
 * The operator's per-tenant switch for inbound mTLS (issue 16, item 7: "enable for your account").
 * A tenant the operator never switched follows `TWOWAY_EDGE_DEFAULT_ENABLED`. The edge asks on every
 * request (so switching a tenant off refuses the next request of an open keep-alive connection with
 * `403 edge_not_enabled`); answers are cached in memory and dropped on any tenant change announced
 * on the change bus, and on "anything may have changed" (another process wrote to the store).
 */
export class EdgeAccess {
  readonly #store: Pick<TenantStore, 'getTenant' | 'setEdgeEnabled'>;
  readonly #defaultEnabled: boolean;
  readonly #changes: ChangeBus | undefined;
  readonly #cache = new Map<string, boolean>();
  /** Bumped on every clear, so a lookup in flight across a clear does not cache a stale answer. */
  #generation = 0;

  constructor(
    store: Pick<TenantStore, 'getTenant' | 'setEdgeEnabled'>,
    defaultEnabled: boolean,
    changes?: ChangeBus,
  ) {
    this.#store = store;
    this.#defaultEnabled = defaultEnabled;
    this.#changes = changes;
    changes?.on(
      (change) => {
        if (change.kind === 'tenant') this.forget();
      },
      () => this.forget(),
    );
  }

  /** Whether `tenant` may use the edge: its switch, or the default when it has none. */
  enabledFor(tenant: Pick<Tenant, 'edgeEnabled'>): boolean {
    return tenant.edgeEnabled ?? this.#defaultEnabled;
  }

  /**
   * Whether the tenant may use the edge; a plain boolean when cached (the edge's hot path). An
   * unknown tenant answers false.
   */
  enabled(tenantId: string): boolean | Promise<boolean> {
    const cached = this.#cache.get(tenantId);
    if (cached !== undefined) return cached;
    const generation = this.#generation;
    return this.#store.getTenant(tenantId).then((tenant) => {
      const enabled = tenant !== undefined && this.enabledFor(tenant);
      if (generation === this.#generation) {
        if (this.#cache.size >= 100_000) this.#cache.clear();
        this.#cache.set(tenantId, enabled);
      }
      return enabled;
    });
  }

  /**
   * Switches the edge for the tenant; effective for the next request (other workers first apply it).
   * @throws AppError `not_found` when the tenant does not exist.
   */
  async set(tenantId: string, enabled: boolean): Promise<void> {
    if (!(await this.#store.setEdgeEnabled(tenantId, enabled))) {
      throw new AppError('not_found', 'No such tenant.');
    }
    this.forget();
    await this.#changes?.emit({ tenantId, kind: 'tenant', id: tenantId });
  }

  /** Drops every cached answer. */
  forget(): void {
    this.#generation += 1;
    this.#cache.clear();
  }
}
