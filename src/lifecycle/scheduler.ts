import type { Logger } from 'pino';
import { activationFailed, versionActivated } from '../identities/audit.js';
import type { IdentityService } from '../identities/service.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import type { IdentityStore, LifecycleStore } from '../store/index.js';
import type { AuditService } from './audit.js';
import type { DeliveryWorker } from './deliveries.js';
import type { ExpiryScanner } from './scanner.js';

export interface LifecycleSchedulerDeps {
  store: Pick<LifecycleStore, 'withSchedulerLock' | 'claimFullScan' | 'nextDeliveryAt'> &
    Pick<IdentityStore, 'listDueActivations' | 'clearScheduledActivation' | 'nextActivationAt'>;
  identities: Pick<IdentityService, 'activateVersion' | 'get'>;
  scanner: ExpiryScanner;
  deliveries: DeliveryWorker;
  audit: AuditService;
  changes: ChangeBus;
  clock: Clock;
  /** Full expiry scan interval (ms); TWOWAY_LIFECYCLE_SCAN_INTERVAL_MS. */
  scanIntervalMs: number;
  /**
   * Longest sleep between two ticks (ms), so that work scheduled by another process (an upload
   * with activateAt through the CLI or another replica) is picked up within it. Default 30 s.
   */
  maxSleepMs?: number;
  /** Shortest sleep between two timer ticks (ms). Default 1 s. */
  minSleepMs?: number;
  /** Delay before a change-triggered rescan of one tenant (ms); changes within it are merged. */
  changeDebounceMs?: number;
  logger: Logger;
}

/** What one tick did. */
export interface TickResult {
  /** False when another process held the scheduler lock (no activation or scan here). */
  ran: boolean;
  activated: number;
  /** A full scan ran here. */
  scanned: boolean;
  /** A full scan was due but another process had already run it within the interval. */
  scanSkipped: boolean;
  notified: number;
  attempted: number;
}

/**
 * The lifecycle scheduler inside `twoway serve`: scheduled activations, the expiry scan and
 * notification deliveries. It runs once at start, then sleeps until the earliest of: the next full
 * scan, the next scheduled activation or delivery retry, `maxSleepMs`. A change to a tenant's
 * identities or client certificates made through this server (any of its workers) triggers a rescan
 * of that tenant, so alerts follow a rotation, an upload or a revocation at once; changes made by
 * other processes (the CLI, other hosts) wait for the next full scan.
 *
 * Ticks run one at a time in this process (a promise chain). Across processes sharing PostgreSQL,
 * activations and scans run under a session advisory lock: a process that does not get it skips
 * them (its timer tries again later). The lock only keeps two scans from overlapping, so the full
 * scan is also claimed in the store (LifecycleStore.claimFullScan, the last scan's time in `meta`):
 * one full scan per interval across every process on the store, SQLite or PostgreSQL. A process
 * that finds the scan done elsewhere takes that scan's time as its own (its timer then wakes when
 * the next one is due) and drops its expiry gauges, so that only the process that ran the latest
 * scan exports them. Deliveries run outside the lock: each one is leased (its due
 * time moved past the attempt, atomically) before it is sent, so any process may send due ones and
 * none is sent twice; notifications are claimed with a unique insert, so overlapping scans cannot
 * queue one twice either. The lock saves duplicate work; correctness does not rest on it.
 *
 * Time comes from the injected clock; tests drive {@link runOnce} with a manual clock and never sleep.
 */
export class LifecycleScheduler {
  readonly #deps: LifecycleSchedulerDeps;
  #chain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #lastScanAt: number | undefined;
  #stopped = true;
  readonly #pendingTenants = new Set<string>();
  #debounce: NodeJS.Timeout | undefined;

  constructor(deps: LifecycleSchedulerDeps) {
    this.#deps = deps;
    deps.changes.on(
      (change) => {
        if (change.kind === 'identity' || change.kind === 'client_certificate' || change.kind === 'tenant') {
          this.#scanTenantSoon(change.tenantId);
        }
      },
      () => this.#arm(0),
    );
  }

  /**
   * Starts the loop: one run now (with a full scan unless another process ran one within the
   * interval), then on the timer.
   */
  start(): void {
    this.#stopped = false;
    void this.#enqueue(() => this.#tick('due'));
  }

  /**
   * One full tick now (activations due, a full scan with notifications, deliveries due), after any
   * tick already running; the scan runs whenever another process ran its last one. Resolves when
   * done.
   */
  runOnce(): Promise<TickResult> {
    return this.#enqueue(() => this.#tick('force'));
  }

  /**
   * What the timer runs, now, after any tick already running: activations due, the full scan if this
   * process's last known one is an interval old and no other process ran it since, deliveries due.
   * For tests that move a manual clock instead of waiting for the timer.
   */
  runDue(): Promise<TickResult> {
    return this.#enqueue(() => this.#tick('if-due'));
  }

  /** Stops the timers and waits for a running tick. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#debounce) clearTimeout(this.#debounce);
    await this.#chain.catch(() => undefined);
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(work, work);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  #scanTenantSoon(tenantId: string): void {
    if (this.#stopped) return;
    this.#pendingTenants.add(tenantId);
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      const tenants = [...this.#pendingTenants];
      this.#pendingTenants.clear();
      void this.#enqueue(() => this.#tick('if-due', tenants));
    }, this.#deps.changeDebounceMs ?? 100);
    this.#debounce.unref();
  }

  /**
   * One tick. `scan`: `force` runs the full scan in any case; `due` claims it (unless another process
   * ran one within the interval); `if-due` claims it only when this process's last known scan is an
   * interval old, else rescans `tenants` only.
   */
  async #tick(scan: 'force' | 'due' | 'if-due', tenants: string[] = []): Promise<TickResult> {
    const { store, clock, logger, scanIntervalMs } = this.#deps;
    const result: TickResult = {
      ran: false,
      activated: 0,
      scanned: false,
      scanSkipped: false,
      notified: 0,
      attempted: 0,
    };
    try {
      const outcome = await store.withSchedulerLock(async () => {
        result.ran = true;
        result.activated = await this.#activateDue();
        const now = clock.now();
        const scanDue = this.#lastScanAt === undefined || now.getTime() - this.#lastScanAt >= scanIntervalMs;
        let claimed = false;
        if (scan !== 'if-due' || scanDue) {
          const claim = await store.claimFullScan(now, scanIntervalMs, scan === 'force');
          claimed = claim.claimed;
          if (!claim.claimed) {
            this.#lastScanAt = claim.lastScanAt.getTime();
            result.scanSkipped = true;
            this.#deps.scanner.forgetGauges();
            logger.debug({ lastScanAt: claim.lastScanAt }, 'expiry scan skipped: another process ran it');
          }
        }
        if (claimed) {
          const summary = await this.#deps.scanner.scanAll({ notify: true });
          this.#lastScanAt = now.getTime();
          result.scanned = true;
          result.notified = summary.notified;
          logger.debug({ ...summary }, 'expiry scan done');
        } else {
          for (const tenantId of tenants) {
            result.notified += (await this.#deps.scanner.scanTenant(tenantId, { notify: true })).notified;
          }
        }
      });
      if (!outcome.ran) logger.debug('lifecycle scan skipped: another process holds the scheduler lock');
      // Outside the lock: each delivery is leased on its own, and a slow receiver must not hold up
      // another process's scan or scheduled activation.
      result.attempted = await this.#deps.deliveries.processDue();
    } catch (err) {
      logger.error({ err }, 'lifecycle tick failed');
    } finally {
      await this.#armFromStore();
    }
    return result;
  }

  /** Activates every version whose activateAt has come, through IdentityService (runtime switches at once). */
  async #activateDue(): Promise<number> {
    const { store, identities, audit, clock, logger } = this.#deps;
    let activated = 0;
    for (const due of await store.listDueActivations(clock.now())) {
      try {
        const before = await identities.get(due.tenantId, due.identityId);
        const view = await identities.activateVersion(due.tenantId, due.identityId, due.version);
        activated += 1;
        logger.info(
          {
            tenantId: due.tenantId,
            identityId: due.identityId,
            version: due.version,
            activateAt: due.activateAt,
          },
          'identity version activated as scheduled',
        );
        await audit.record(due.tenantId, {
          actor: 'scheduler',
          ...versionActivated(view, due.version, before.activeVersion, due.activateAt),
        });
      } catch (err) {
        // Expired or not yet valid by now (version_not_usable), or the identity is gone: never retry
        // for ever; say so in the log and the audit log, and drop the schedule.
        const code = (err as { code?: string }).code ?? 'internal_error';
        logger.error(
          { err, tenantId: due.tenantId, identityId: due.identityId, version: due.version },
          'scheduled activation failed',
        );
        await store.clearScheduledActivation(due.tenantId, due.identityId, due.version).catch(() => false);
        await audit
          .record(due.tenantId, {
            actor: 'scheduler',
            ...activationFailed(due.identityId, due.version, due.activateAt, code),
          })
          .catch(() => undefined);
      }
    }
    return activated;
  }

  async #armFromStore(): Promise<void> {
    if (this.#stopped) return;
    const now = this.#deps.clock.now().getTime();
    const candidates = [now + (this.#deps.maxSleepMs ?? 30_000)];
    if (this.#lastScanAt !== undefined) candidates.push(this.#lastScanAt + this.#deps.scanIntervalMs);
    try {
      const { store } = this.#deps;
      for (const next of [await store.nextActivationAt(), await store.nextDeliveryAt()]) {
        if (next) candidates.push(next.getTime());
      }
    } catch (err) {
      this.#deps.logger.warn({ err }, 'could not read the next scheduled lifecycle work');
    }
    // Never spin: work that is due but could not be done (the lock is elsewhere) waits a moment.
    this.#arm(Math.max(this.#deps.minSleepMs ?? 1_000, Math.min(...candidates) - now));
  }

  #arm(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    // setTimeout takes at most 2^31-1 ms; we wake at least every maxSleepMs anyway.
    this.#timer = setTimeout(
      () => void this.#enqueue(() => this.#tick('if-due')),
      Math.min(delayMs, 2_147_483_647),
    );
    this.#timer.unref();
  }
}
