/**
 * The client certificates aggregate (inbound mTLS): table `client_certificates`. Revoking or deleting
 * an issued certificate remakes the platform CA's CRL (platform-ca.ts) in the same transaction.
 */
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import { AppError } from '../errors/app-error.js';
import { type KeyOrder, readPage } from '../shared/paging.js';
import { fromMs, optionalMs, summaryFromJson, summaryToJson, toMs } from './columns.js';
import { Aggregate, type StoreDatabase, Unchanged } from './database.js';
import { enforceQuota } from './quota.js';
import type { ClientCertificatesTable, Database } from './tables.js';
import type {
  ClientCertificate,
  ClientCertificateIndexRow,
  ClientCertificateQuotas,
  ClientCertificateSource,
  ClientCertificateStore,
  CrlMaker,
  Page,
  PageRequest,
  RevocationReason,
  RevokedSerial,
  StoredCrl,
} from './types.js';

/**
 * Makes and stores the next CRL inside the caller's transaction (platform-ca.ts provides it: the
 * platform CA aggregate owns the CRL).
 */
export type CrlWriter = (trx: Transaction<Database>, crl: CrlMaker) => Promise<StoredCrl>;

/** A tenant's live client certificates: oldest first. */
const CLIENT_CERTIFICATE_ORDER: KeyOrder<Selectable<ClientCertificatesTable>> = {
  list: 'client_certificates',
  columns: ['created_at', 'id'],
  direction: 'asc',
  types: ['integer', 'string'],
};

/** Rows per INSERT statement of a bulk import. */
const BULK_ROWS = 500;

/** {@link ClientCertificateStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyClientCertificateStore extends Aggregate implements ClientCertificateStore {
  readonly #storeCrl: CrlWriter;

  constructor(database: StoreDatabase, storeCrl: CrlWriter) {
    super(database);
    this.#storeCrl = storeCrl;
  }

  /**
   * Inserts a client certificate, stamped with the store revision of this write. The duplicate check
   * (same fingerprint, live, in this tenant) runs inside the write transaction, which holds the write
   * lock, so it cannot race; the partial unique index on (tenant, live fingerprint) is the second net.
   * Other tenants' registrations of the same certificate are neither looked at nor revealed.
   * The quotas are counted in the same transaction (see {@link ClientCertificateQuotas}).
   * @throws AppError `client_certificate_exists` (this tenant has it), `not_found` (no such tenant),
   *   `quota_exceeded`.
   */
  async createClientCertificate(
    tenantId: string,
    certificate: ClientCertificate,
    quotas: ClientCertificateQuotas = {},
  ): Promise<void> {
    await this.database.write(async (trx) => {
      await enforceQuota(liveOf(trx, tenantId), quotas.live);
      if (certificate.source === 'issued' && quotas.issued !== undefined) {
        await enforceQuota(issuedSince(trx, tenantId, quotas.issued.since), quotas.issued);
      }
      const existing = await trx
        .selectFrom('client_certificates')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('fingerprint_sha256', '=', certificate.summary.fingerprintSha256)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (existing) {
        throw new AppError(
          'client_certificate_exists',
          'This certificate is already registered in this tenant.',
        );
      }
      const revision = await this.database.currentRevision(trx);
      await trx
        .insertInto('client_certificates')
        .values(toClientCertificateRow(tenantId, certificate, revision))
        .execute();
    });
  }

  /**
   * Inserts many client certificates in one transaction, 500 rows per statement, without the
   * friendly duplicate check: a fingerprint this tenant already has fails the whole batch with
   * `bad_request`.
   */
  async createClientCertificates(tenantId: string, certificates: ClientCertificate[]): Promise<void> {
    await this.database.write(async (trx) => {
      const revision = await this.database.currentRevision(trx);
      for (let i = 0; i < certificates.length; i += BULK_ROWS) {
        const rows = certificates
          .slice(i, i + BULK_ROWS)
          .map((c) => toClientCertificateRow(tenantId, c, revision));
        await trx.insertInto('client_certificates').values(rows).execute();
      }
    });
  }

  async getClientCertificate(tenantId: string, id: string): Promise<ClientCertificate | undefined> {
    return this.database.first(this.#live(tenantId).where('id', '=', id), toClientCertificate);
  }

  /** Not deleted, oldest first. @throws AppError `invalid_cursor` */
  async listClientCertificates(tenantId: string, request: PageRequest): Promise<Page<ClientCertificate>> {
    const live = this.#live(tenantId);
    return readPage(this.database, live, CLIENT_CERTIFICATE_ORDER, [tenantId], request, toClientCertificate);
  }

  async countClientCertificates(tenantId: string, since: Date): Promise<{ live: number; issued: number }> {
    const { db } = this.database;
    const count = sql<number | string>`count(*)`.as('count');
    return this.database.read(async () => {
      const live = await liveOf(db, tenantId).select(count).executeTakeFirstOrThrow();
      const issued = await issuedSince(db, tenantId, since).select(count).executeTakeFirstOrThrow();
      return { live: Number(live.count), issued: Number(issued.count) };
    });
  }

  /**
   * Revokes a live certificate (a second call changes nothing and returns it as it is). For an issued
   * certificate the CRL is remade by `crl` in the same transaction, so no process can ever serve a
   * CRL that misses a committed revocation.
   */
  async revokeClientCertificate(
    tenantId: string,
    id: string,
    at: Date,
    reason: RevocationReason,
    crl: CrlMaker,
  ): Promise<ClientCertificate | undefined> {
    const atMs = toMs(at);
    return this.database.write(async (trx) => {
      const row = await liveOne(trx, tenantId, id).selectAll().executeTakeFirst();
      if (!row) throw new Unchanged(undefined);
      if (row.revoked_at !== null) throw new Unchanged(toClientCertificate(row));
      const revision = await this.database.currentRevision(trx);
      const changes = { revoked_at: atMs, revocation_reason: reason, updated_at: atMs, revision };
      await this.#update(trx, tenantId, id).set(changes).execute();
      if (row.source === 'issued') await this.#storeCrl(trx, crl);
      return toClientCertificate({ ...row, ...changes });
    });
  }

  /**
   * Soft-deletes a live certificate. An issued one not yet revoked is revoked first
   * (`cessationOfOperation`) and the CRL remade, in the same transaction: the platform CA's signature
   * on it stays valid until notAfter, so relying parties must learn from the CRL that it is gone.
   */
  async deleteClientCertificate(tenantId: string, id: string, at: Date, crl: CrlMaker): Promise<boolean> {
    const atMs = toMs(at);
    return this.database.write(async (trx) => {
      const row = await liveOne(trx, tenantId, id).select(['source', 'revoked_at']).executeTakeFirst();
      if (!row) throw new Unchanged(false);
      const revision = await this.database.currentRevision(trx);
      const revoke = row.source === 'issued' && row.revoked_at === null;
      await this.#update(trx, tenantId, id)
        .set({
          deleted_at: atMs,
          updated_at: atMs,
          revision,
          ...(revoke ? { revoked_at: atMs, revocation_reason: 'cessationOfOperation' } : {}),
        })
        .execute();
      if (revoke) await this.#storeCrl(trx, crl);
      return true;
    });
  }

  /** Live registrations of one fingerprint, one per tenant at most, ordered by tenant id. */
  async findClientCertificatesByFingerprint(fingerprintSha256: string): Promise<ClientCertificate[]> {
    const live = this.database.db
      .selectFrom('client_certificates')
      .selectAll()
      .where('fingerprint_sha256', '=', fingerprintSha256)
      .where('deleted_at', 'is', null);
    return this.database.all(live.orderBy('tenant_id'), toClientCertificate);
  }

  /** Ordered by revision; rows of one write share its revision. */
  async listClientCertificateChanges(
    afterRevision: number,
    options?: { includeDeleted?: boolean },
  ): Promise<ClientCertificateIndexRow[]> {
    let query = this.database.db
      .selectFrom('client_certificates')
      .select([
        'id',
        'tenant_id',
        'fingerprint_sha256',
        'not_before',
        'not_after',
        'revoked_at',
        'deleted_at',
        'revision',
      ])
      .where('revision', '>', afterRevision);
    if (options?.includeDeleted === false) query = query.where('deleted_at', 'is', null);
    return this.database.all(query.orderBy('revision'), (row) => {
      const entry: ClientCertificateIndexRow = {
        id: row.id,
        tenantId: row.tenant_id,
        fingerprintSha256: row.fingerprint_sha256,
        notBefore: fromMs(row.not_before),
        notAfter: fromMs(row.not_after),
        revision: Number(row.revision),
      };
      if (row.revoked_at !== null) entry.revokedAt = fromMs(row.revoked_at);
      if (row.deleted_at !== null) entry.deletedAt = fromMs(row.deleted_at);
      return entry;
    });
  }

  /** An UPDATE of certificate `id` of `tenantId`, inside the caller's write transaction. */
  #update(trx: Transaction<Database>, tenantId: string, id: string) {
    return this.database.updateOfTenant(trx, 'client_certificates', tenantId).where('id', '=', id);
  }

  /** The live (not deleted) certificates of `tenantId`. */
  #live(tenantId: string) {
    return this.database.ofTenant('client_certificates', tenantId).where('deleted_at', 'is', null);
  }
}

/** The live (not deleted) certificates of `tenantId`, revoked ones included (columns to choose). */
function liveOf(db: Kysely<Database>, tenantId: string) {
  return db
    .selectFrom('client_certificates')
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null);
}

/** Certificates the platform CA issued to `tenantId` at or after `since`, deleted ones too. */
function issuedSince(db: Kysely<Database>, tenantId: string, since: Date) {
  return db
    .selectFrom('client_certificates')
    .where('tenant_id', '=', tenantId)
    .where('source', '=', 'issued')
    .where('created_at', '>=', toMs(since));
}

/** The live certificate `id` of `tenantId`, inside the caller's write transaction (columns to choose). */
function liveOne(trx: Transaction<Database>, tenantId: string, id: string) {
  return trx
    .selectFrom('client_certificates')
    .where('tenant_id', '=', tenantId)
    .where('id', '=', id)
    .where('deleted_at', 'is', null);
}

/**
 * Every revoked issued certificate, deleted ones too, in order of revocation: what the platform CA's
 * CRL lists (RFC 5280 §5.1.2.6). For platform-ca.ts, inside its transaction.
 */
export async function revokedIssuedSerials(db: Kysely<Database>): Promise<RevokedSerial[]> {
  const rows = await db
    .selectFrom('client_certificates')
    .select(['serial_number', 'revoked_at', 'revocation_reason'])
    .where('source', '=', 'issued')
    .where('revoked_at', 'is not', null)
    .orderBy('revoked_at')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    serialNumber: r.serial_number,
    revokedAt: fromMs(r.revoked_at ?? 0),
    ...(r.revocation_reason !== null ? { reason: r.revocation_reason as RevocationReason } : {}),
  }));
}

/** Copies field by field (see summaryToJson): nothing a caller attached can reach the database. */
function toClientCertificateRow(
  tenantId: string,
  c: ClientCertificate,
  revision: number,
): Insertable<ClientCertificatesTable> {
  return {
    id: c.id,
    tenant_id: tenantId,
    name: c.name,
    source: c.source,
    fingerprint_sha256: c.summary.fingerprintSha256,
    serial_number: c.summary.serialNumber,
    not_before: toMs(c.summary.notBefore),
    not_after: toMs(c.summary.notAfter),
    summary_json: summaryToJson(c.summary),
    certificate_pem: c.certificatePem,
    revoked_at: optionalMs(c.revokedAt),
    revocation_reason: c.revocationReason ?? null,
    deleted_at: optionalMs(c.deletedAt),
    created_at: toMs(c.createdAt),
    updated_at: toMs(c.updatedAt),
    revision,
  };
}

function toClientCertificate(row: Selectable<ClientCertificatesTable>): ClientCertificate {
  const certificate: ClientCertificate = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    source: row.source as ClientCertificateSource,
    summary: summaryFromJson(row.summary_json),
    certificatePem: row.certificate_pem,
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.revoked_at !== null) certificate.revokedAt = fromMs(row.revoked_at);
  if (row.revocation_reason !== null) {
    certificate.revocationReason = row.revocation_reason as RevocationReason;
  }
  if (row.deleted_at !== null) certificate.deletedAt = fromMs(row.deleted_at);
  return certificate;
}
