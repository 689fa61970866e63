import type { Static } from '@sinclair/typebox';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { type Collection, viewPage } from '../shared/paging.js';
import type { AuditEvent, LifecycleStore, PageRequest } from '../store/index.js';
import type { AuditEventSchema } from './schemas.js';

/** An audit entry as the API shows it. */
export type AuditEventView = Static<typeof AuditEventSchema>;

/**
 * What a change records in the audit log, whoever made it: each action's note is built by one
 * function beside its service (`identities/audit.ts`, `mappings/audit.ts`, ...), which the HTTP
 * routes (as `request.audit`, written by the audit hook with the actor, source address and request
 * id), the CLI and the scheduler all call, so an action's `detail` is the same from every entry
 * point. `detail` holds safe facts only (ids, fingerprints, names, dates): never a key, password
 * or token.
 */
export interface AuditNote {
  /** `<object>.<verb>`, e.g. `identity.create`, `mapping.update`, `client_certificate.revoke`. */
  action: string;
  objectType: string;
  objectId: string;
  /** The tenant the object belongs to (over HTTP it defaults to the route's `:tenant`). */
  tenantId?: string;
  detail?: Record<string, unknown>;
}

/** What a caller records; the service adds id and time. */
export type AuditEntry = Omit<AuditEvent, 'id' | 'tenantId' | 'at' | 'detail'> & {
  detail?: Record<string, unknown>;
};

/** Filters of `GET .../audit-events`. */
export interface AuditFilter {
  action?: string;
  objectType?: string;
  objectId?: string;
  since?: Date;
  until?: Date;
}

/** Field names that never belong in an audit entry, whatever a caller passes. */
const SECRET_FIELD = /pass(word|phrase)|private|pkcs12|secret|token|credential|^api_?key$|^key(pem)?$/i;
/** Values that look like key material or bearer tokens. */
const SECRET_VALUE = /-----BEGIN [A-Z ]*PRIVATE KEY-----|^tw[ls]?_[A-Za-z0-9_-]{20,}$|^whsec_/;

/**
 * Drops fields whose name or value looks secret (a second net: handlers put only ids, names,
 * fingerprints and dates in `detail`). Nested objects and arrays are scrubbed too; depth is capped.
 */
export function scrubDetail(detail: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(detail)) {
    if (SECRET_FIELD.test(key)) continue;
    const clean = scrubValue(value, depth);
    if (clean !== undefined) out[key] = clean;
  }
  return out;
}

function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? undefined : value.slice(0, 2048);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return value;
  if (depth >= 3) return undefined;
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => scrubValue(v, depth + 1) ?? null);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return scrubDetail(value as Record<string, unknown>, depth + 1);
  return undefined;
}

/**
 * The audit log: who (actor: `operator`, `api-key:<id>`, `member:<id>`, `scheduler`, `cli`) changed what (action,
 * object type and id), when, from where (source address). Entries are appended, never changed;
 * `detail` passes {@link scrubDetail} on the way in.
 */
export class AuditService {
  readonly #store: Pick<LifecycleStore, 'appendAuditEvent' | 'listAuditEvents'>;
  readonly #clock: Clock;

  constructor(deps: { store: Pick<LifecycleStore, 'appendAuditEvent' | 'listAuditEvents'>; clock: Clock }) {
    this.#store = deps.store;
    this.#clock = deps.clock;
  }

  async record(tenantId: string, entry: AuditEntry): Promise<void> {
    const event: AuditEvent = {
      id: newId('aud'),
      tenantId,
      at: this.#clock.now(),
      actor: entry.actor,
      action: entry.action,
      objectType: entry.objectType,
      objectId: entry.objectId,
      detail: scrubDetail(entry.detail ?? {}),
      ...(entry.sourceAddress ? { sourceAddress: entry.sourceAddress } : {}),
      ...(entry.requestId ? { requestId: entry.requestId } : {}),
    };
    await this.#store.appendAuditEvent(tenantId, event);
  }

  /**
   * One page of the log, newest first; `nextCursor` when more match. A cursor is bound to the
   * filters it was made with (shared/paging.ts).
   * @throws AppError `invalid_cursor` for a cursor this list did not make with these filters
   */
  async list(
    tenantId: string,
    filter: AuditFilter,
    request: PageRequest,
  ): Promise<Collection<AuditEventView>> {
    const page = await this.#store.listAuditEvents(
      tenantId,
      {
        ...(filter.action ? { action: filter.action } : {}),
        ...(filter.objectType ? { objectType: filter.objectType } : {}),
        ...(filter.objectId ? { objectId: filter.objectId } : {}),
        ...(filter.since ? { since: filter.since } : {}),
        ...(filter.until ? { until: filter.until } : {}),
      },
      request,
    );
    return viewPage(page, (events) => events.map(view));
  }
}

function view(e: AuditEvent): AuditEventView {
  return {
    id: e.id,
    at: e.at.toISOString(),
    actor: e.actor,
    action: e.action,
    objectType: e.objectType,
    objectId: e.objectId,
    ...(e.sourceAddress ? { sourceAddress: e.sourceAddress } : {}),
    detail: e.detail,
  };
}
