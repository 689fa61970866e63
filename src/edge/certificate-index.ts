import type { Logger } from 'pino';
import type { ClientCertificateIndexRow, ClientCertificateStore } from '../store/index.js';

/** One registered client certificate as the edge checks it; instants in epoch milliseconds. */
export interface EdgeEntry {
  id: string;
  tenantId: string;
  fingerprintSha256: string;
  notBeforeMs: number;
  notAfterMs: number;
  revoked: boolean;
}

/**
 * The edge's in-memory index of client certificates by SHA-256 fingerprint, then tenant: one `Map`
 * lookup per handshake ({@link has}) and per request ({@link get}: the map, then the registrations of
 * that one fingerprint, nearly always a single one), whatever the number of registered certificates.
 * That is what lets the edge ask for a client certificate without listing every registered one in the
 * CertificateRequest (TLS caps the CA-names list at 64 KiB, and servers that list large trust stores
 * fail handshakes: haproxy/haproxy#1011, openssl/openssl#6609; FIELD-NOTES "Large trust stores break
 * handshakes").
 *
 * Several tenants may register the same public certificate (migration 0004): each registration is
 * its own entry, and the edge picks the one of the tenant whose API key the request carries, so one
 * tenant's revocation or deletion leaves another's registration alone.
 *
 * Kept in step with the store by revision: every write stamps the rows it changes with the store's
 * revision, and {@link sync} asks for rows newer than the newest it has seen and applies them in
 * revision order (writes are serialized, so revisions commit in order and nothing is skipped). It
 * runs after each change made in this process (before the API answers) and whenever the revision
 * poll sees another process's write. Deleted certificates leave the index; revoked ones stay, marked,
 * so the edge can say `client_certificate_revoked`.
 */
export class ClientCertificateIndex {
  readonly #store: Pick<ClientCertificateStore, 'listClientCertificateChanges'>;
  readonly #logger: Logger | undefined;
  /** Fingerprint → its live registrations, at most one per tenant. */
  readonly #entries = new Map<string, EdgeEntry[]>();
  #size = 0;
  #watermark = -1;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(store: Pick<ClientCertificateStore, 'listClientCertificateChanges'>, logger?: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Number of registrations in the index (revoked ones included; one per tenant and certificate). */
  get size(): number {
    return this.#size;
  }

  /** True when some tenant registered the fingerprint (lowercase hex SHA-256 of the DER certificate). */
  has(fingerprintSha256: string): boolean {
    return this.#entries.has(fingerprintSha256);
  }

  /** `tenantId`'s registration of a fingerprint, O(1); undefined when that tenant has none. */
  get(fingerprintSha256: string, tenantId: string): EdgeEntry | undefined {
    const list = this.#entries.get(fingerprintSha256);
    if (list === undefined) return undefined;
    for (const entry of list) if (entry.tenantId === tenantId) return entry;
    return undefined;
  }

  /** Loads every live certificate; call once before serving. */
  async load(): Promise<void> {
    const rows = await this.#store.listClientCertificateChanges(-1, { includeDeleted: false });
    for (const row of rows) this.#apply(row);
    this.#logger?.info({ certificates: this.#entries.size }, 'client certificate index loaded');
  }

  /**
   * Applies every change newer than what the index has. Resolves once a pass that started after this
   * call has finished, so a caller that committed a change before calling sees it applied.
   */
  sync(): Promise<void> {
    if (this.#running === null) {
      this.#running = this.#pass().finally(() => {
        this.#running = null;
      });
      return this.#running;
    }
    this.#queued ??= this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null;
        return this.sync();
      });
    return this.#queued;
  }

  async #pass(): Promise<void> {
    const rows = await this.#store.listClientCertificateChanges(this.#watermark);
    for (const row of rows) this.#apply(row);
    if (rows.length > 0) this.#logger?.debug({ changes: rows.length }, 'client certificate index synced');
  }

  #apply(row: ClientCertificateIndexRow): void {
    if (row.revision > this.#watermark) this.#watermark = row.revision;
    const list = this.#entries.get(row.fingerprintSha256);
    if (row.deletedAt) {
      // Only the row that is indexed may remove its entry: a deleted older row of the same
      // fingerprint and tenant must not remove a newer registration.
      const at = list?.findIndex((entry) => entry.id === row.id) ?? -1;
      if (list === undefined || at < 0) return;
      list.splice(at, 1);
      this.#size -= 1;
      if (list.length === 0) this.#entries.delete(row.fingerprintSha256);
      return;
    }
    const entry: EdgeEntry = {
      id: row.id,
      tenantId: row.tenantId,
      fingerprintSha256: row.fingerprintSha256,
      notBeforeMs: row.notBefore.getTime(),
      notAfterMs: row.notAfter.getTime(),
      revoked: row.revokedAt !== undefined,
    };
    if (list === undefined) {
      this.#entries.set(row.fingerprintSha256, [entry]);
      this.#size += 1;
      return;
    }
    // One live registration per tenant and fingerprint (the store's unique index): a newer row of
    // the same tenant replaces the older one.
    const at = list.findIndex((current) => current.tenantId === row.tenantId);
    if (at < 0) {
      list.push(entry);
      this.#size += 1;
    } else {
      list[at] = entry;
    }
  }
}
