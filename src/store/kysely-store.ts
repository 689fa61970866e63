import { createHash } from 'node:crypto';
import { type Insertable, type Kysely, Migrator, type Selectable, sql, type Transaction } from 'kysely';
import { AppError, toAppError } from '../errors/app-error.js';
import {
  alertFromRow,
  alertKey,
  alertToRow,
  attemptFromRow,
  attemptToRow,
  auditFromRow,
  auditToRow,
  deliveryFromRow,
  deliveryToRow,
  notificationFromRow,
  notificationToRow,
  settingsFromRow,
  settingsToRow,
} from './lifecycle-rows.js';
import { migrationProvider, type StoreDialect } from './migrations/index.js';
import type {
  ApiKeysTable,
  ClientCertificatesTable,
  Database,
  IdentitiesTable,
  IdentityVersionsTable,
  MappingsTable,
  TenantsTable,
} from './tables.js';
import type {
  AlertRecord,
  ApiKey,
  AuditEvent,
  AuditQuery,
  CertificateSummary,
  ChainEntry,
  ClientCertificate,
  ClientCertificateIndexRow,
  ClientCertificateSource,
  CrlMaker,
  DeliveryAttempt,
  DeliveryRecord,
  DeliveryStatus,
  DueActivation,
  Identity,
  IdentityVersion,
  Mapping,
  MatchKind,
  NotificationRecord,
  NotificationSettings,
  PlatformCaCertificate,
  RevocationReason,
  Store,
  StoredCrl,
  Tenant,
} from './types.js';

/** What a driver error means to the store; anything unclassified becomes `internal_error`. */
export type DriverFailure =
  /** A unique or primary key constraint; `table` when the driver names it. */
  | { kind: 'unique'; table: string | undefined }
  /** A foreign key constraint: the referenced tenant or identity does not exist. */
  | { kind: 'foreign_key' }
  /** The database cannot be reached or is busy beyond the timeout. */
  | { kind: 'unavailable' };

/**
 * The few things that differ between SQLite and PostgreSQL. sqlite.ts and postgres.ts provide them;
 * every query lives in {@link KyselyStore}.
 */
export interface DialectSupport {
  readonly dialect: StoreDialect;
  /** True when `table` exists where unqualified names resolve (SQLite `main`, the PostgreSQL search_path). */
  tableExists(db: Kysely<Database>, table: string): Promise<boolean>;
  /** Recognises the driver's constraint and connection errors; undefined for anything else. */
  classifyError(err: unknown): DriverFailure | undefined;
  /** The PostgreSQL schema of Kysely's migration bookkeeping tables; undefined on SQLite. */
  readonly migrationTableSchema?: string | undefined;
}

/** Safe `detail` for a unique violation, by table; never echoes the offending value. */
const duplicateDetail: Record<string, string> = {
  api_keys: 'An API key with this id or token already exists.',
  identities: 'An identity with this id already exists.',
  identity_versions: 'This identity version already exists.',
  mappings: 'A mapping with this id already exists.',
};

/** Thrown inside a write transaction to roll it back (it changed nothing) and return `value`. */
class Unchanged extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super('nothing changed');
    this.value = value;
  }
}

/**
 * The Store over Kysely: every query written once, run by SQLite (better-sqlite3) or PostgreSQL (pg).
 *
 * - Tenant isolation is in the SQL: every tenant-owned query has `where tenant_id = ?` with the
 *   `tenantId` argument, and rows are written under the `tenantId` argument; a `tenantId` field inside
 *   a domain object passed in is ignored. Another tenant's object reads as undefined / false, and a
 *   write aimed at it changes nothing.
 * - Every write runs in a transaction that first bumps the revision counter. That first statement
 *   takes the write lock up front (SQLite RESERVED lock, a PostgreSQL row lock), so write transactions
 *   are serialized: `addVersion`'s max(version)+1 cannot race, and there is no lock-order deadlock.
 *   A write that matches no row is rolled back, so the revision moves only when data changed.
 * - Errors: unique violation on tenants → `tenant_exists`; other unique violations → `bad_request`;
 *   foreign key violations → `not_found`; unreachable database → `not_ready`; anything else →
 *   `internal_error` with the driver error as `cause` (never in `detail`).
 */
export class KyselyStore implements Store {
  readonly dialect: StoreDialect;
  readonly #db: Kysely<Database>;
  readonly #support: DialectSupport;
  #closed: Promise<void> | undefined;

  constructor(db: Kysely<Database>, support: DialectSupport) {
    this.#db = db;
    this.#support = support;
    this.dialect = support.dialect;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /**
   * True when the Twoway tables exist and `tenants` or `meta` holds a row. Safe before migrate():
   * a missing table counts as empty.
   */
  async hasData(): Promise<boolean> {
    return this.#read(async () => {
      if (await this.#support.tableExists(this.#db, 'tenants')) {
        const row = await this.#db.selectFrom('tenants').select('id').limit(1).executeTakeFirst();
        if (row) return true;
      }
      if (await this.#support.tableExists(this.#db, 'meta')) {
        const row = await this.#db.selectFrom('meta').select('key').limit(1).executeTakeFirst();
        if (row) return true;
      }
      return false;
    });
  }

  /**
   * Applies pending migrations (see migrations/); a no-op when the schema is current. On PostgreSQL
   * concurrent callers wait on Kysely's advisory lock.
   * @throws AppError `internal_error` (cause: the failed migration's error), e.g. when the database
   *   was migrated by a newer Twoway.
   */
  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.#db,
      provider: migrationProvider(this.dialect),
      migrationTableSchema: this.#support.migrationTableSchema,
    });
    const { error } = await migrator.migrateToLatest();
    if (error !== undefined) {
      throw new AppError('internal_error', 'Database migration failed.', { cause: error });
    }
  }

  /** @throws AppError `not_ready` when the database does not answer. */
  async ping(): Promise<void> {
    await this.#read(() => sql`select 1`.execute(this.#db));
  }

  /** Closes the connection (SQLite) or pool (PostgreSQL); later calls return the same promise. */
  close(): Promise<void> {
    this.#closed ??= this.#db.destroy();
    return this.#closed;
  }

  // ---- tenants and API keys ----------------------------------------------------------------------

  /** @throws AppError `tenant_exists` when the id is taken. */
  async createTenant(tenant: Tenant): Promise<void> {
    await this.#write((trx) =>
      trx
        .insertInto('tenants')
        .values({ id: tenant.id, name: tenant.name, created_at: toMs(tenant.createdAt) })
        .execute(),
    );
  }

  async getTenant(tenantId: string): Promise<Tenant | undefined> {
    const row = await this.#read(() =>
      this.#db.selectFrom('tenants').selectAll().where('id', '=', tenantId).executeTakeFirst(),
    );
    return row && toTenant(row);
  }

  /** Ordered by createdAt then id. */
  async listTenants(): Promise<Tenant[]> {
    const rows = await this.#read(() =>
      this.#db.selectFrom('tenants').selectAll().orderBy('created_at').orderBy('id').execute(),
    );
    return rows.map(toTenant);
  }

  /**
   * @throws AppError `not_found` when the tenant does not exist, `bad_request` when the id or token
   *   hash is already stored.
   */
  async createApiKey(tenantId: string, key: ApiKey): Promise<void> {
    await this.#write((trx) =>
      trx
        .insertInto('api_keys')
        .values({
          id: key.id,
          tenant_id: tenantId,
          token_sha256: key.tokenSha256,
          created_at: toMs(key.createdAt),
          revoked_at: optionalMs(key.revokedAt),
        })
        .execute(),
    );
  }

  /** Revoking twice keeps the first `revokedAt` and still returns true. */
  async revokeApiKey(tenantId: string, keyId: string, at: Date): Promise<boolean> {
    const revokedMs = toMs(at);
    return this.#write(async (trx) => {
      const result = await trx
        .updateTable('api_keys')
        .set({ revoked_at: revokedMs })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', keyId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) return true;
      const existing = await trx
        .selectFrom('api_keys')
        .select('id')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', keyId)
        .executeTakeFirst();
      throw new Unchanged(existing !== undefined);
    });
  }

  async findApiKeyByHash(tokenSha256: string): Promise<ApiKey | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('api_keys')
        .selectAll()
        .where('token_sha256', '=', tokenSha256)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    return row && toApiKey(row);
  }

  // ---- identities --------------------------------------------------------------------------------

  /**
   * Inserts the identity and its first version in one transaction. The identity's `activeVersion`
   * is set to `first.version`; the version's `activatedAt` defaults to the identity's `createdAt`.
   * @throws AppError `not_found` when the tenant does not exist, `bad_request` when the id is taken.
   */
  async createIdentity(tenantId: string, identity: Identity, first: IdentityVersion): Promise<void> {
    await this.#write(async (trx) => {
      await trx
        .insertInto('identities')
        .values({
          id: identity.id,
          tenant_id: tenantId,
          name: identity.name,
          active_version: first.version,
          disabled: toFlag(identity.disabled),
          created_at: toMs(identity.createdAt),
          updated_at: toMs(identity.updatedAt),
          deleted_at: optionalMs(identity.deletedAt),
        })
        .execute();
      await trx
        .insertInto('identity_versions')
        .values(
          toVersionRow(tenantId, identity.id, first.version, first, first.activatedAt ?? identity.createdAt),
        )
        .execute();
    });
  }

  /** Returns soft-deleted identities too (with `deletedAt`); callers decide what that means. */
  async getIdentity(tenantId: string, identityId: string): Promise<Identity | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('identities')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', identityId)
        .executeTakeFirst(),
    );
    return row && toIdentity(row);
  }

  async listIdentities(tenantId: string): Promise<Identity[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('identities')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
    );
    return rows.map(toIdentity);
  }

  /** Ordered by version, oldest first; empty for an unknown identity or another tenant's. */
  async listVersions(tenantId: string, identityId: string): Promise<IdentityVersion[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('identity_versions')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .orderBy('version')
        .execute(),
    );
    return rows.map(toVersion);
  }

  async getVersion(
    tenantId: string,
    identityId: string,
    version: number,
  ): Promise<IdentityVersion | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('identity_versions')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .where('version', '=', version)
        .executeTakeFirst(),
    );
    return row && toVersion(row);
  }

  /**
   * Numbers the new version max(version)+1 inside the write transaction, awaits `make(version)` to
   * build it (seal the key with the version in the associated data), inserts it and, when `activate`,
   * points the identity at it with `activatedAt = at`. The identity's `updatedAt` becomes `at`.
   * `make` runs while the transaction holds the write lock, so it should be quick (one KMS call).
   * Identifiers and `activatedAt` inside the made version are ignored: the arguments and the
   * computed number are stored.
   * @returns the new version number (1-based).
   * @throws AppError `not_found` when the identity does not exist in this tenant or is deleted;
   *   whatever `make` throws (as an AppError).
   */
  async addVersion(
    tenantId: string,
    identityId: string,
    make: (version: number) => IdentityVersion | Promise<IdentityVersion>,
    activate: boolean,
    at: Date,
  ): Promise<number> {
    const atMs = toMs(at);
    return this.#write(async (trx) => {
      const touched = await trx
        .updateTable('identities')
        .set({ updated_at: atMs })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', identityId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (touched.numUpdatedRows === 0n) throw new AppError('not_found', 'Identity not found.');
      const { max } = await trx
        .selectFrom('identity_versions')
        .select((eb) => eb.fn.max('version').as('max'))
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .executeTakeFirstOrThrow();
      const version = (max === null ? 0 : Number(max)) + 1;
      const made = await make(version);
      await trx
        .insertInto('identity_versions')
        .values(toVersionRow(tenantId, identityId, version, made, activate ? at : undefined))
        .execute();
      if (activate) {
        await trx
          .updateTable('identities')
          .set({ active_version: version })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', identityId)
          .execute();
      }
      return version;
    });
  }

  /**
   * Points the identity at `version` and stamps the version's `activatedAt` (and the identity's
   * `updatedAt`) with `at`, in one transaction. Changes nothing when the identity is unknown, deleted
   * or another tenant's, or the version does not exist.
   */
  async activateVersion(tenantId: string, identityId: string, version: number, at: Date): Promise<void> {
    const atMs = toMs(at);
    await this.#write(async (trx) => {
      const identity = await trx
        .updateTable('identities')
        .set({ active_version: version, updated_at: atMs })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', identityId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (identity.numUpdatedRows === 0n) throw new Unchanged(undefined);
      const stamped = await trx
        .updateTable('identity_versions')
        .set({ activated_at: atMs, activate_at: null })
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .where('version', '=', version)
        .executeTakeFirst();
      // Rolls back the identity update too: never point at a version that does not exist.
      if (stamped.numUpdatedRows === 0n) throw new Unchanged(undefined);
    });
  }

  /**
   * Sets `deletedAt` (and `updatedAt`) to `at`, unless enabled, not deleted mappings name the
   * identity: then nothing changes and their number is returned. The check and the delete are one
   * write transaction, serialized with every other write (class comment), so a mapping created or
   * enabled meanwhile cannot end up naming a deleted identity (createMapping and updateMapping check
   * the other way round). Versions stay for audit. A second call keeps the first `deletedAt`;
   * changes nothing for an unknown identity or another tenant's.
   * @returns the number of enabled mappings that kept the identity; 0 otherwise.
   */
  async softDeleteIdentity(tenantId: string, identityId: string, at: Date): Promise<number> {
    const atMs = toMs(at);
    return this.#write(async (trx) => {
      const inUse = await this.#countActiveMappings(trx, tenantId, identityId);
      if (inUse > 0) throw new Unchanged(inUse);
      const result = await trx
        .updateTable('identities')
        .set({ deleted_at: atMs, updated_at: atMs })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', identityId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new Unchanged(0);
      return 0;
    });
  }

  /**
   * Renames and/or enables/disables a live identity; changes nothing for an unknown, deleted or
   * other tenant's identity.
   */
  async updateIdentity(
    tenantId: string,
    identityId: string,
    changes: { name?: string; disabled?: boolean },
    at: Date,
  ): Promise<void> {
    const atMs = toMs(at);
    await this.#write(async (trx) => {
      const result = await trx
        .updateTable('identities')
        .set({
          updated_at: atMs,
          ...(changes.name !== undefined ? { name: changes.name } : {}),
          ...(changes.disabled !== undefined ? { disabled: changes.disabled ? 1 : 0 } : {}),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', identityId)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new Unchanged(undefined);
    });
  }

  // ---- mappings ----------------------------------------------------------------------------------

  /**
   * @throws AppError `not_found` when the tenant or the identity (in this tenant) does not exist or
   *   the identity is deleted (checked in the write transaction, see softDeleteIdentity),
   *   `bad_request` when the id is taken.
   */
  async createMapping(tenantId: string, mapping: Mapping): Promise<void> {
    await this.#write(async (trx) => {
      await this.#requireLiveIdentity(trx, tenantId, mapping.identityId);
      await trx
        .insertInto('mappings')
        .values({
          ...toMappingFields(mapping),
          id: mapping.id,
          tenant_id: tenantId,
          created_at: toMs(mapping.createdAt),
        })
        .execute();
    });
  }

  async getMapping(tenantId: string, mappingId: string): Promise<Mapping | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('mappings')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', mappingId)
        .executeTakeFirst(),
    );
    return row && toMapping(row);
  }

  /** Ordered by createdAt then id; soft-deleted ones only with `includeDeleted`. */
  async listMappings(tenantId: string, options?: { includeDeleted?: boolean }): Promise<Mapping[]> {
    const rows = await this.#read(() => {
      let query = this.#db.selectFrom('mappings').selectAll().where('tenant_id', '=', tenantId);
      if (options?.includeDeleted !== true) query = query.where('deleted', '=', 0);
      return query.orderBy('created_at').orderBy('id').execute();
    });
    return rows.map(toMapping);
  }

  /**
   * Overwrites every field but `id`, `tenantId` and `createdAt`; a soft delete is an update with
   * `deleted: true`. Changes nothing for an unknown mapping or another tenant's.
   * @throws AppError `not_found` when `identityId` names no identity of this tenant, or, for a
   *   mapping left enabled and not deleted, a deleted one (checked in the write transaction, see
   *   softDeleteIdentity).
   */
  async updateMapping(tenantId: string, mapping: Mapping): Promise<void> {
    await this.#write(async (trx) => {
      const result = await trx
        .updateTable('mappings')
        .set(toMappingFields(mapping))
        .where('tenant_id', '=', tenantId)
        .where('id', '=', mapping.id)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new Unchanged(undefined);
      // After the update, so an unknown mapping stays a no-op; the throw rolls the update back.
      if (mapping.enabled && !mapping.deleted) {
        await this.#requireLiveIdentity(
          trx,
          tenantId,
          mapping.identityId,
          'The identity of this mapping does not exist or was deleted; name another one or disable the mapping.',
        );
      }
    });
  }

  /** Enabled, not deleted mappings of `tenantId` that name `identityId`. */
  async #countActiveMappings(db: Kysely<Database>, tenantId: string, identityId: string): Promise<number> {
    const row = await db
      .selectFrom('mappings')
      .select((eb) => eb.fn.countAll().as('count'))
      .where('tenant_id', '=', tenantId)
      .where('identity_id', '=', identityId)
      .where('enabled', '=', 1)
      .where('deleted', '=', 0)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /**
   * @throws AppError `not_found` (with `detail`) unless `identityId` is a live (not deleted)
   *   identity of `tenantId`.
   */
  async #requireLiveIdentity(
    db: Kysely<Database>,
    tenantId: string,
    identityId: string,
    detail = 'No such identity in this tenant.',
  ): Promise<void> {
    const row = await db
      .selectFrom('identities')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', '=', identityId)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (row === undefined) throw new AppError('not_found', detail);
  }

  // ---- meta --------------------------------------------------------------------------------------

  async getMeta(key: string): Promise<Buffer | undefined> {
    const row = await this.#read(() =>
      this.#db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst(),
    );
    return row && asBuffer(row.value);
  }

  /** Inserts or replaces. */
  async setMeta(key: string, value: Buffer): Promise<void> {
    await this.#write((trx) =>
      trx
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute(),
    );
  }

  /** 0 on a fresh database; +1 per committed write transaction that changed data. */
  async getRevision(): Promise<number> {
    const row = await this.#read(() =>
      this.#db.selectFrom('revision').select('value').where('id', '=', 1).executeTakeFirst(),
    );
    return row === undefined ? 0 : Number(row.value);
  }

  // ---- client certificates and the platform CA (inbound mTLS) -----------------------------------

  /**
   * Inserts a client certificate, stamped with the store revision of this write. The duplicate check
   * runs inside the write transaction, which holds the write lock, so it cannot race; the partial
   * unique index on live fingerprints is the second net.
   * @throws AppError `client_certificate_exists` (this tenant has it), `certificate_in_use` (another
   *   tenant has it), `not_found` (no such tenant).
   */
  async createClientCertificate(tenantId: string, certificate: ClientCertificate): Promise<void> {
    await this.#write(async (trx) => {
      const existing = await trx
        .selectFrom('client_certificates')
        .select('tenant_id')
        .where('fingerprint_sha256', '=', certificate.summary.fingerprintSha256)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (existing) {
        throw existing.tenant_id === tenantId
          ? new AppError(
              'client_certificate_exists',
              'This certificate is already registered in this tenant.',
            )
          : new AppError(
              'certificate_in_use',
              'This certificate is registered by another tenant; a certificate can name one tenant only.',
            );
      }
      const revision = await this.#currentRevision(trx);
      await trx
        .insertInto('client_certificates')
        .values(this.#clientCertificateRow(tenantId, certificate, revision))
        .execute();
    });
  }

  /**
   * Inserts many client certificates in one transaction, 500 rows per statement, without the
   * friendly duplicate check: a duplicate fingerprint fails the whole batch with `bad_request`.
   */
  async createClientCertificates(tenantId: string, certificates: ClientCertificate[]): Promise<void> {
    await this.#write(async (trx) => {
      const revision = await this.#currentRevision(trx);
      for (let i = 0; i < certificates.length; i += 500) {
        const rows = certificates
          .slice(i, i + 500)
          .map((c) => this.#clientCertificateRow(tenantId, c, revision));
        await trx.insertInto('client_certificates').values(rows).execute();
      }
    });
  }

  async getClientCertificate(tenantId: string, id: string): Promise<ClientCertificate | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('client_certificates')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst(),
    );
    return row && this.#toClientCertificate(row);
  }

  async listClientCertificates(tenantId: string): Promise<ClientCertificate[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('client_certificates')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute(),
    );
    return rows.map((row) => this.#toClientCertificate(row));
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
    return this.#write(async (trx) => {
      const row = await trx
        .selectFrom('client_certificates')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!row) throw new Unchanged(undefined);
      if (row.revoked_at !== null) throw new Unchanged(this.#toClientCertificate(row));
      const revision = await this.#currentRevision(trx);
      const changes = { revoked_at: atMs, revocation_reason: reason, updated_at: atMs, revision };
      await trx
        .updateTable('client_certificates')
        .set(changes)
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      if (row.source === 'issued') await this.#storeCrl(trx, crl);
      return this.#toClientCertificate({ ...row, ...changes });
    });
  }

  /**
   * Soft-deletes a live certificate. An issued one not yet revoked is revoked first
   * (`cessationOfOperation`) and the CRL remade, in the same transaction: the platform CA's signature
   * on it stays valid until notAfter, so relying parties must learn from the CRL that it is gone.
   */
  async deleteClientCertificate(tenantId: string, id: string, at: Date, crl: CrlMaker): Promise<boolean> {
    const atMs = toMs(at);
    return this.#write(async (trx) => {
      const row = await trx
        .selectFrom('client_certificates')
        .select(['source', 'revoked_at'])
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (!row) throw new Unchanged(false);
      const revision = await this.#currentRevision(trx);
      const revoke = row.source === 'issued' && row.revoked_at === null;
      await trx
        .updateTable('client_certificates')
        .set({
          deleted_at: atMs,
          updated_at: atMs,
          revision,
          ...(revoke ? { revoked_at: atMs, revocation_reason: 'cessationOfOperation' } : {}),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      if (revoke) await this.#storeCrl(trx, crl);
      return true;
    });
  }

  async findClientCertificateByFingerprint(
    fingerprintSha256: string,
  ): Promise<ClientCertificate | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('client_certificates')
        .selectAll()
        .where('fingerprint_sha256', '=', fingerprintSha256)
        .where('deleted_at', 'is', null)
        .executeTakeFirst(),
    );
    return row && this.#toClientCertificate(row);
  }

  /** Ordered by revision; rows of one write share its revision. */
  async listClientCertificateChanges(
    afterRevision: number,
    options?: { includeDeleted?: boolean },
  ): Promise<ClientCertificateIndexRow[]> {
    const rows = await this.#read(() => {
      let query = this.#db
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
      return query.orderBy('revision').execute();
    });
    return rows.map((row) => {
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

  async getPlatformCa(): Promise<
    { root: PlatformCaCertificate; issuing: PlatformCaCertificate } | undefined
  > {
    const rows = await this.#read(() => this.#db.selectFrom('platform_ca').selectAll().execute());
    const find = (role: 'root' | 'issuing'): PlatformCaCertificate | undefined => {
      const row = rows.find((r) => r.role === role);
      return (
        row && {
          role,
          certificatePem: row.certificate_pem,
          secret: {
            ciphertext: asBuffer(row.ciphertext),
            iv: asBuffer(row.iv),
            wrappedDek: asBuffer(row.wrapped_dek),
            kekId: row.kek_id,
          },
          createdAt: fromMs(row.created_at),
        }
      );
    };
    const root = find('root');
    const issuing = find('issuing');
    return root && issuing ? { root, issuing } : undefined;
  }

  /** Inserts both certificates in one transaction unless a platform CA exists (then false). */
  async createPlatformCa(root: PlatformCaCertificate, issuing: PlatformCaCertificate): Promise<boolean> {
    return this.#write(async (trx) => {
      const existing = await trx.selectFrom('platform_ca').select('role').limit(1).executeTakeFirst();
      if (existing) throw new Unchanged(false);
      await trx
        .insertInto('platform_ca')
        .values(
          [root, issuing].map((ca, i) => ({
            role: i === 0 ? 'root' : 'issuing',
            certificate_pem: ca.certificatePem,
            ciphertext: ca.secret.ciphertext,
            iv: ca.secret.iv,
            wrapped_dek: ca.secret.wrappedDek,
            kek_id: ca.secret.kekId,
            created_at: toMs(ca.createdAt),
          })),
        )
        .execute();
      return true;
    });
  }

  async getCrl(): Promise<StoredCrl | undefined> {
    const row = await this.#read(() =>
      this.#db.selectFrom('platform_crl').selectAll().where('id', '=', 1).executeTakeFirst(),
    );
    return (
      row && {
        crlNumber: Number(row.crl_number),
        der: asBuffer(row.der),
        thisUpdate: fromMs(row.this_update),
        nextUpdate: fromMs(row.next_update),
      }
    );
  }

  async refreshCrl(crl: CrlMaker): Promise<StoredCrl> {
    return this.#write((trx) => this.#storeCrl(trx, crl));
  }

  /** Makes the next CRL from every revoked issued certificate (deleted ones too) and stores it. */
  async #storeCrl(trx: Transaction<Database>, crl: CrlMaker): Promise<StoredCrl> {
    const revoked = await trx
      .selectFrom('client_certificates')
      .select(['serial_number', 'revoked_at', 'revocation_reason'])
      .where('source', '=', 'issued')
      .where('revoked_at', 'is not', null)
      .orderBy('revoked_at')
      .orderBy('id')
      .execute();
    const current = await trx
      .selectFrom('platform_crl')
      .select('crl_number')
      .where('id', '=', 1)
      .executeTakeFirst();
    const crlNumber = (current === undefined ? 0 : Number(current.crl_number)) + 1;
    const made = await crl(
      revoked.map((r) => ({
        serialNumber: r.serial_number,
        revokedAt: fromMs(r.revoked_at ?? 0),
        ...(r.revocation_reason !== null ? { reason: r.revocation_reason as RevocationReason } : {}),
      })),
      crlNumber,
    );
    const values = {
      crl_number: crlNumber,
      der: made.der,
      this_update: toMs(made.thisUpdate),
      next_update: toMs(made.nextUpdate),
    };
    await trx
      .insertInto('platform_crl')
      .values({ id: 1, ...values })
      .onConflict((oc) => oc.column('id').doUpdateSet(values))
      .execute();
    return { crlNumber, ...made };
  }

  /** The revision this write transaction set (it bumped the counter first, see #write). */
  async #currentRevision(trx: Transaction<Database>): Promise<number> {
    const row = await trx
      .selectFrom('revision')
      .select('value')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(row.value);
  }

  /** Copies field by field (see summaryToJson): nothing a caller attached can reach the database. */
  #clientCertificateRow(
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

  #toClientCertificate(row: Selectable<ClientCertificatesTable>): ClientCertificate {
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

  // ---- lifecycle: notification settings, alerts, notifications, audit, scheduling (issue 4) ------

  async getNotificationSettings(tenantId: string): Promise<NotificationSettings | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('notification_settings')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst(),
    );
    return row && settingsFromRow(row);
  }

  /** Inserts or replaces; bumps the revision (settings are configuration). @throws AppError `not_found` (tenant) */
  async putNotificationSettings(tenantId: string, settings: NotificationSettings): Promise<void> {
    const row = settingsToRow(tenantId, settings);
    const { tenant_id: _key, ...changes } = row;
    await this.#write((trx) =>
      trx
        .insertInto('notification_settings')
        .values(row)
        .onConflict((oc) => oc.column('tenant_id').doUpdateSet(changes))
        .execute(),
    );
  }

  async syncAlerts(tenantId: string, current: Omit<AlertRecord, 'raisedAt'>[], at: Date): Promise<void> {
    const atMs = toMs(at);
    const wanted = new Map(current.map((a) => [alertKey(a), a]));
    try {
      await this.#append(async (trx) => {
        const rows = await trx.selectFrom('alerts').selectAll().where('tenant_id', '=', tenantId).execute();
        const keyOf = (r: (typeof rows)[number]) =>
          alertKey({
            objectType: r.object_type,
            objectId: r.object_id,
            objectVersion: r.object_version,
            kind: r.kind,
          });
        const byKey = (r: (typeof rows)[number]) =>
          trx
            .updateTable('alerts')
            .where('tenant_id', '=', tenantId)
            .where('object_type', '=', r.object_type)
            .where('object_id', '=', r.object_id)
            .where('object_version', '=', r.object_version)
            .where('kind', '=', r.kind);
        for (const row of rows) {
          const key = keyOf(row);
          const alert = wanted.get(key);
          if (alert === undefined) {
            if (row.resolved_at === null) await byKey(row).set({ resolved_at: atMs }).execute();
            continue;
          }
          wanted.delete(key);
          const fresh = alertToRow(tenantId, alert, row.resolved_at === null ? fromMs(row.raised_at) : at);
          const changed =
            row.resolved_at !== null ||
            row.name !== fresh.name ||
            Number(row.not_after) !== fresh.not_after ||
            Number(row.threshold_days) !== fresh.threshold_days;
          if (changed) {
            await byKey(row)
              .set({
                name: fresh.name,
                not_after: fresh.not_after,
                threshold_days: fresh.threshold_days,
                raised_at: fresh.raised_at,
                resolved_at: null,
              })
              .execute();
          }
        }
        for (const alert of wanted.values()) {
          await trx
            .insertInto('alerts')
            .values(alertToRow(tenantId, alert, at))
            .execute();
        }
      });
    } catch (err) {
      // Another process synced the same alerts at the same moment: its result stands.
      if (!this.#isUniqueViolation(err)) throw err;
    }
  }

  async listAlerts(tenantId: string): Promise<AlertRecord[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('alerts')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('resolved_at', 'is', null)
        .orderBy('not_after')
        .orderBy('object_id')
        .execute(),
    );
    return rows.map(alertFromRow);
  }

  async claimNotification(
    tenantId: string,
    notification: NotificationRecord,
    deliveries: DeliveryRecord[],
  ): Promise<boolean> {
    try {
      return await this.#append(async (trx) => {
        const sent = await trx
          .selectFrom('notifications')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('object_type', '=', notification.objectType)
          .where('object_id', '=', notification.objectId)
          .where('object_version', '=', notification.objectVersion)
          .where('threshold_days', '<=', notification.thresholdDays)
          .limit(1)
          .executeTakeFirst();
        if (sent) return false;
        await trx.insertInto('notifications').values(notificationToRow(tenantId, notification)).execute();
        for (const delivery of deliveries) {
          await trx
            .insertInto('notification_deliveries')
            .values(deliveryToRow(tenantId, notification.id, delivery))
            .execute();
        }
        return true;
      });
    } catch (err) {
      if (this.#isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async listNotifications(
    tenantId: string,
    limit: number,
  ): Promise<
    { notification: NotificationRecord; deliveries: DeliveryRecord[]; attempts: DeliveryAttempt[] }[]
  > {
    return this.#read(async () => {
      const rows = await this.#db
        .selectFrom('notifications')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
      if (rows.length === 0) return [];
      const deliveries = await this.#db
        .selectFrom('notification_deliveries')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where(
          'notification_id',
          'in',
          rows.map((r) => r.id),
        )
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      const attempts =
        deliveries.length === 0
          ? []
          : await this.#db
              .selectFrom('notification_attempts')
              .selectAll()
              .where('tenant_id', '=', tenantId)
              .where(
                'delivery_id',
                'in',
                deliveries.map((d) => d.id),
              )
              .orderBy('delivery_id')
              .orderBy('attempt')
              .execute();
      return rows.map((row) => {
        const own = deliveries.filter((d) => d.notification_id === row.id);
        const ids = new Set(own.map((d) => d.id));
        return {
          notification: notificationFromRow(row),
          deliveries: own.map(deliveryFromRow),
          attempts: attempts.filter((a) => ids.has(a.delivery_id)).map(attemptFromRow),
        };
      });
    });
  }

  async getNotification(tenantId: string, notificationId: string): Promise<NotificationRecord | undefined> {
    const row = await this.#read(() =>
      this.#db
        .selectFrom('notifications')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('id', '=', notificationId)
        .executeTakeFirst(),
    );
    return row && notificationFromRow(row);
  }

  async listDueDeliveries(now: Date, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('notification_deliveries')
        .selectAll()
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', toMs(now))
        .orderBy('next_attempt_at')
        .orderBy('id')
        .limit(limit)
        .execute(),
    );
    return rows.map(deliveryFromRow);
  }

  async leaseDelivery(
    tenantId: string,
    deliveryId: string,
    expected: Date,
    leaseUntil: Date,
  ): Promise<boolean> {
    return this.#append(async (trx) => {
      const result = await trx
        .updateTable('notification_deliveries')
        .set({ next_attempt_at: toMs(leaseUntil) })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', deliveryId)
        .where('status', '=', 'pending')
        .where('next_attempt_at', '=', toMs(expected))
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  async recordDeliveryAttempt(
    tenantId: string,
    attempt: DeliveryAttempt,
    next: { status: DeliveryStatus; nextAttemptAt?: Date; lastError?: string; deliveredAt?: Date },
  ): Promise<void> {
    await this.#append(async (trx) => {
      await trx.insertInto('notification_attempts').values(attemptToRow(tenantId, attempt)).execute();
      await trx
        .updateTable('notification_deliveries')
        .set({
          status: next.status,
          attempts: attempt.attempt,
          next_attempt_at: optionalMs(next.nextAttemptAt),
          last_error: next.lastError ?? null,
          updated_at: toMs(attempt.at),
          delivered_at: optionalMs(next.deliveredAt),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', attempt.deliveryId)
        .execute();
    });
  }

  async appendAuditEvent(tenantId: string, event: AuditEvent): Promise<void> {
    await this.#append((trx) => trx.insertInto('audit_events').values(auditToRow(tenantId, event)).execute());
  }

  async listAuditEvents(tenantId: string, query: AuditQuery): Promise<(AuditEvent & { seq: number })[]> {
    const rows = await this.#read(() => {
      let q = this.#db.selectFrom('audit_events').selectAll().where('tenant_id', '=', tenantId);
      if (query.action !== undefined) q = q.where('action', '=', query.action);
      if (query.objectType !== undefined) q = q.where('object_type', '=', query.objectType);
      if (query.objectId !== undefined) q = q.where('object_id', '=', query.objectId);
      if (query.since !== undefined) q = q.where('at', '>=', toMs(query.since));
      if (query.until !== undefined) q = q.where('at', '<', toMs(query.until));
      if (query.beforeSeq !== undefined) q = q.where('seq', '<', query.beforeSeq);
      return q.orderBy('seq', 'desc').limit(query.limit).execute();
    });
    return rows.map(auditFromRow);
  }

  async listDueActivations(now: Date): Promise<DueActivation[]> {
    const rows = await this.#read(() =>
      this.#db
        .selectFrom('identity_versions as v')
        .innerJoin('identities as i', (join) =>
          join.onRef('i.tenant_id', '=', 'v.tenant_id').onRef('i.id', '=', 'v.identity_id'),
        )
        .select(['v.tenant_id', 'v.identity_id', 'v.version', 'v.activate_at'])
        .where('v.activate_at', 'is not', null)
        .where('v.activate_at', '<=', toMs(now))
        .where('i.deleted_at', 'is', null)
        .orderBy('v.activate_at')
        .orderBy('v.identity_id')
        .orderBy('v.version')
        .execute(),
    );
    return rows.map((r) => ({
      tenantId: r.tenant_id,
      identityId: r.identity_id,
      version: Number(r.version),
      activateAt: fromMs(r.activate_at ?? 0),
    }));
  }

  async clearScheduledActivation(tenantId: string, identityId: string, version: number): Promise<boolean> {
    return this.#write(async (trx) => {
      const result = await trx
        .updateTable('identity_versions')
        .set({ activate_at: null })
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .where('version', '=', version)
        .where('activate_at', 'is not', null)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new Unchanged(false);
      return true;
    });
  }

  async nextScheduledAt(): Promise<Date | undefined> {
    return this.#read(async () => {
      // Same filter as listDueActivations: a deleted identity's schedule must not wake anyone.
      const activation = await this.#db
        .selectFrom('identity_versions as v')
        .innerJoin('identities as i', (join) =>
          join.onRef('i.tenant_id', '=', 'v.tenant_id').onRef('i.id', '=', 'v.identity_id'),
        )
        .select((eb) => eb.fn.min('v.activate_at').as('at'))
        .where('v.activate_at', 'is not', null)
        .where('i.deleted_at', 'is', null)
        .executeTakeFirst();
      const delivery = await this.#db
        .selectFrom('notification_deliveries')
        .select((eb) => eb.fn.min('next_attempt_at').as('at'))
        .where('status', '=', 'pending')
        .executeTakeFirst();
      const times = [activation?.at, delivery?.at].filter((t) => t !== null && t !== undefined).map(Number);
      return times.length === 0 ? undefined : new Date(Math.min(...times));
    });
  }

  /**
   * PostgreSQL: a session advisory lock held on one reserved connection for the duration of
   * `work` (released on unlock, or by the server if the connection dies). The key is derived from
   * the schema, so deployments (and test runs) in different schemas of one database do not block
   * each other. SQLite: one process per database file, so `work` always runs.
   */
  async withSchedulerLock<T>(work: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
    if (this.dialect !== 'postgres') return { ran: true, value: await work() };
    const key = schedulerLockKey(this.#support.migrationTableSchema ?? 'public');
    return this.#db.connection().execute(async (connection) => {
      const { rows } = await this.#read(() =>
        sql<{ locked: boolean }>`select pg_try_advisory_lock(${key}::bigint) as locked`.execute(connection),
      );
      if (rows[0]?.locked !== true) return { ran: false };
      try {
        return { ran: true, value: await work() };
      } finally {
        await sql`select pg_advisory_unlock(${key}::bigint)`.execute(connection).catch(() => undefined);
      }
    });
  }

  /** Runs `work` in a transaction that does not bump the revision (lifecycle bookkeeping only). */
  async #append<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction().execute(work);
    } catch (err) {
      if (err instanceof Unchanged) return err.value as T;
      throw this.#translate(err);
    }
  }

  #isUniqueViolation(err: unknown): boolean {
    const cause = err instanceof AppError ? err.cause : err;
    return this.#support.classifyError(cause)?.kind === 'unique';
  }

  // ---- plumbing ----------------------------------------------------------------------------------

  async #read<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.#translate(err);
    }
  }

  /** Runs `work` in a transaction that first bumps the revision (see the class comment). */
  async #write<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    try {
      return await this.#db.transaction().execute(async (trx) => {
        await trx
          .updateTable('revision')
          .set((eb) => ({ value: eb('value', '+', 1) }))
          .where('id', '=', 1)
          .execute();
        return work(trx);
      });
    } catch (err) {
      if (err instanceof Unchanged) return err.value as T;
      throw this.#translate(err);
    }
  }

  #translate(err: unknown): AppError {
    if (err instanceof AppError) return err;
    const failure = this.#support.classifyError(err);
    switch (failure?.kind) {
      case 'unique':
        if (failure.table === 'tenants') {
          return new AppError('tenant_exists', 'A tenant with this id already exists.', { cause: err });
        }
        return new AppError(
          'bad_request',
          duplicateDetail[failure.table ?? ''] ?? 'An object with the same key already exists.',
          { cause: err },
        );
      case 'foreign_key':
        return new AppError('not_found', 'The tenant or identity it refers to does not exist.', {
          cause: err,
        });
      case 'unavailable':
        return new AppError('not_ready', 'The database is not reachable.', { cause: err });
      default:
        return toAppError(err);
    }
  }
}

// ---- row mapping -----------------------------------------------------------------------------------

/** Milliseconds since the epoch. @throws AppError `bad_request` for an invalid Date. */
function toMs(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new AppError('bad_request', 'Invalid date.');
  return ms;
}

function optionalMs(date: Date | undefined): number | null {
  return date === undefined ? null : toMs(date);
}

/** PostgreSQL int8 arrives as a number (see postgres.ts); Number() also covers a string or bigint. */
function fromMs(value: number | string | bigint): Date {
  return new Date(Number(value));
}

function toIso(date: Date): string {
  return new Date(toMs(date)).toISOString();
}

function toFlag(value: boolean): number {
  return value ? 1 : 0;
}

function fromFlag(value: number): boolean {
  return Number(value) !== 0;
}

/** Both drivers return Buffer; a plain Uint8Array is copied into one all the same. */
function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value);
}

function toTenant(row: Selectable<TenantsTable>): Tenant {
  return { id: row.id, name: row.name, createdAt: fromMs(row.created_at) };
}

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  const key: ApiKey = {
    id: row.id,
    tenantId: row.tenant_id,
    tokenSha256: row.token_sha256,
    createdAt: fromMs(row.created_at),
  };
  if (row.revoked_at !== null) key.revokedAt = fromMs(row.revoked_at);
  return key;
}

function toIdentity(row: Selectable<IdentitiesTable>): Identity {
  const identity: Identity = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    activeVersion: Number(row.active_version),
    disabled: fromFlag(row.disabled),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.deleted_at !== null) identity.deletedAt = fromMs(row.deleted_at);
  return identity;
}

/** CertificateSummary as stored: instants as RFC 3339 strings. */
type SummaryJson = Omit<CertificateSummary, 'notBefore' | 'notAfter'> & {
  notBefore: string;
  notAfter: string;
};
type ChainEntryJson = Omit<ChainEntry, 'notAfter'> & { notAfter: string };

/**
 * Copies the summary field by field rather than spreading it, so that nothing a caller attached to
 * the object (a key, a password) can ride along into the database.
 */
function summaryToJson(s: CertificateSummary): string {
  const json: SummaryJson = {
    subject: s.subject,
    issuer: s.issuer,
    serialNumber: s.serialNumber,
    fingerprintSha256: s.fingerprintSha256,
    spkiSha256: s.spkiSha256,
    notBefore: toIso(s.notBefore),
    notAfter: toIso(s.notAfter),
    keyType: s.keyType,
    signatureAlgorithm: s.signatureAlgorithm,
    subjectAltNames: [...s.subjectAltNames],
  };
  if (s.keySize !== undefined) json.keySize = s.keySize;
  if (s.curve !== undefined) json.curve = s.curve;
  return JSON.stringify(json);
}

function summaryFromJson(text: string): CertificateSummary {
  const json = JSON.parse(text) as SummaryJson;
  return { ...json, notBefore: new Date(json.notBefore), notAfter: new Date(json.notAfter) };
}

function chainToJson(chain: ChainEntry[]): string {
  const json: ChainEntryJson[] = chain.map((c) => ({
    subject: c.subject,
    issuer: c.issuer,
    notAfter: toIso(c.notAfter),
    fingerprintSha256: c.fingerprintSha256,
  }));
  return JSON.stringify(json);
}

function chainFromJson(text: string): ChainEntry[] {
  const json = JSON.parse(text) as ChainEntryJson[];
  return json.map((c) => ({ ...c, notAfter: new Date(c.notAfter) }));
}

function toVersionRow(
  tenantId: string,
  identityId: string,
  version: number,
  v: IdentityVersion,
  activatedAt: Date | undefined,
): IdentityVersionsTable {
  return {
    identity_id: identityId,
    version,
    tenant_id: tenantId,
    fingerprint_sha256: v.summary.fingerprintSha256,
    not_before: toMs(v.summary.notBefore),
    not_after: toMs(v.summary.notAfter),
    summary_json: summaryToJson(v.summary),
    chain_json: chainToJson(v.chain),
    certificates_pem: v.certificatesPem,
    ciphertext: v.secret.ciphertext,
    iv: v.secret.iv,
    wrapped_dek: v.secret.wrappedDek,
    kek_id: v.secret.kekId,
    created_at: toMs(v.createdAt),
    activated_at: optionalMs(activatedAt),
    activate_at: activatedAt === undefined ? optionalMs(v.activateAt) : null,
  };
}

function toVersion(row: Selectable<IdentityVersionsTable>): IdentityVersion {
  const version: IdentityVersion = {
    identityId: row.identity_id,
    tenantId: row.tenant_id,
    version: Number(row.version),
    summary: summaryFromJson(row.summary_json),
    chain: chainFromJson(row.chain_json),
    certificatesPem: row.certificates_pem,
    secret: {
      ciphertext: asBuffer(row.ciphertext),
      iv: asBuffer(row.iv),
      wrappedDek: asBuffer(row.wrapped_dek),
      kekId: row.kek_id,
    },
    createdAt: fromMs(row.created_at),
  };
  if (row.activated_at !== null) version.activatedAt = fromMs(row.activated_at);
  if (row.activate_at !== null) version.activateAt = fromMs(row.activate_at);
  return version;
}

/** The columns an update may change. */
function toMappingFields(m: Mapping) {
  return {
    name: m.name,
    service: m.service,
    url: m.url,
    match_kind: m.match,
    identity_id: m.identityId,
    enabled: toFlag(m.enabled),
    deleted: toFlag(m.deleted),
    trust_anchors_pem: m.trustAnchorsPem ?? null,
    updated_at: toMs(m.updatedAt),
  } satisfies Partial<MappingsTable>;
}

function toMapping(row: Selectable<MappingsTable>): Mapping {
  const mapping: Mapping = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    service: row.service,
    url: row.url,
    match: row.match_kind as MatchKind,
    identityId: row.identity_id,
    enabled: fromFlag(row.enabled),
    deleted: fromFlag(row.deleted),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  if (row.trust_anchors_pem !== null) mapping.trustAnchorsPem = row.trust_anchors_pem;
  return mapping;
}

/**
 * The advisory lock key of the lifecycle scheduler for one PostgreSQL schema: the first 8 bytes of
 * SHA-256("twoway/scheduler/<schema>") as a signed 64-bit integer, in decimal.
 */
function schedulerLockKey(schema: string): string {
  return createHash('sha256').update(`twoway/scheduler/${schema}`).digest().readBigInt64BE(0).toString();
}
