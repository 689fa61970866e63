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
 * The edge's in-memory index of client certificates by SHA-256 fingerprint: one `Map` lookup per
 * handshake and per request, whatever the number of registered certificates. That is what lets the
 * edge ask for a client certificate without listing every registered one in the CertificateRequest
 * (TLS caps the CA-names list at 64 KiB, and servers that list large trust stores fail handshakes:
 * haproxy/haproxy#1011, openssl/openssl#6609; FIELD-NOTES "Large trust stores break handshakes").
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
  readonly #entries = new Map<string, EdgeEntry>();
  #watermark = -1;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(store: Pick<ClientCertificateStore, 'listClientCertificateChanges'>, logger?: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Number of certificates in the index (revoked ones included). */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry for a fingerprint (lowercase hex SHA-256 of the DER certificate), O(1). */
  get(fingerprintSha256: string): EdgeEntry | undefined {
    return this.#entries.get(fingerprintSha256);
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
    const current = this.#entries.get(row.fingerprintSha256);
    if (row.deletedAt) {
      // Only the row that is indexed may remove the entry: a deleted older row of the same
      // fingerprint must not remove a newer registration.
      if (current?.id === row.id) this.#entries.delete(row.fingerprintSha256);
      return;
    }
    this.#entries.set(row.fingerprintSha256, {
      id: row.id,
      tenantId: row.tenantId,
      fingerprintSha256: row.fingerprintSha256,
      notBeforeMs: row.notBefore.getTime(),
      notAfterMs: row.notAfter.getTime(),
      revoked: row.revokedAt !== undefined,
    });
  }
}
