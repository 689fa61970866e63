/**
 * The identities aggregate: tables `identities` and `identity_versions`, scheduled activations
 * included (the lifecycle scheduler asks here what is due).
 */
import type { Kysely, Selectable, Transaction, Updateable } from 'kysely';
import { AppError } from '../errors/app-error.js';
import { type KeyOrder, readPage } from '../shared/paging.js';
import {
  chainFromJson,
  chainToJson,
  fromFlag,
  fromMs,
  optionalMs,
  sealedFromRow,
  sealedToRow,
  summaryFromJson,
  summaryToJson,
  toFlag,
  toMs,
} from './columns.js';
import { Aggregate, changedAny, type StoreDatabase, Unchanged } from './database.js';
import { enforceQuota } from './quota.js';
import type { Database, IdentitiesTable, IdentityVersionsTable } from './tables.js';
import type {
  DueActivation,
  Identity,
  IdentityStore,
  IdentityVersion,
  Page,
  PageRequest,
  QuotaLimit,
} from './types.js';

/** A tenant's live identities: oldest first. */
const IDENTITY_ORDER: KeyOrder<Selectable<IdentitiesTable>> = {
  list: 'identities',
  columns: ['created_at', 'id'],
  direction: 'asc',
  types: ['integer', 'string'],
};

/**
 * Counts the enabled, not deleted mappings of `tenantId` that name `identityId`, inside the caller's
 * transaction (mappings.ts provides it: the mappings aggregate owns that table).
 */
export type ActiveMappingCounter = (
  db: Kysely<Database>,
  tenantId: string,
  identityId: string,
) => Promise<number>;

/** {@link IdentityStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyIdentityStore extends Aggregate implements IdentityStore {
  readonly #countActiveMappings: ActiveMappingCounter;

  constructor(database: StoreDatabase, countActiveMappings: ActiveMappingCounter) {
    super(database);
    this.#countActiveMappings = countActiveMappings;
  }

  /**
   * Inserts the identity and its first version in one transaction. The identity's `activeVersion`
   * is set to `first.version`; the version's `activatedAt` defaults to the identity's `createdAt`.
   * With `quota`, refused while `quota.max` live (not deleted) identities exist, counted in the write
   * transaction.
   * @throws AppError `not_found` when the tenant does not exist, `bad_request` when the id is taken,
   *   `quota_exceeded`.
   */
  async createIdentity(
    tenantId: string,
    identity: Identity,
    first: IdentityVersion,
    quota?: QuotaLimit,
  ): Promise<void> {
    await this.database.write(async (trx) => {
      const live = trx
        .selectFrom('identities')
        .where('tenant_id', '=', tenantId)
        .where('deleted_at', 'is', null);
      await enforceQuota(live, quota);
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
    const identities = this.database.ofTenant('identities', tenantId);
    return this.database.first(identities.where('id', '=', identityId), toIdentity);
  }

  /** Not deleted, oldest first. @throws AppError `invalid_cursor` */
  async listIdentities(tenantId: string, request: PageRequest): Promise<Page<Identity>> {
    const live = this.database.ofTenant('identities', tenantId).where('deleted_at', 'is', null);
    return readPage(this.database, live, IDENTITY_ORDER, [tenantId], request, toIdentity);
  }

  /** Ordered by version, oldest first; empty for an unknown identity or another tenant's. */
  async listVersions(tenantId: string, identityId: string): Promise<IdentityVersion[]> {
    return this.database.all(this.#versions(tenantId, identityId).orderBy('version'), toVersion);
  }

  /** One query for the versions of a page of identities (oldest first per identity). */
  async listVersionsOfIdentities(
    tenantId: string,
    identityIds: string[],
  ): Promise<Map<string, IdentityVersion[]>> {
    const byIdentity = new Map<string, IdentityVersion[]>(identityIds.map((id) => [id, []]));
    if (identityIds.length === 0) return byIdentity;
    const versions = this.database
      .ofTenant('identity_versions', tenantId)
      .where('identity_id', 'in', identityIds)
      .orderBy('identity_id')
      .orderBy('version');
    for (const version of await this.database.all(versions, toVersion)) {
      byIdentity.get(version.identityId)?.push(version);
    }
    return byIdentity;
  }

  async getVersion(
    tenantId: string,
    identityId: string,
    version: number,
  ): Promise<IdentityVersion | undefined> {
    return this.database.first(
      this.#versions(tenantId, identityId).where('version', '=', version),
      toVersion,
    );
  }

  /**
   * Numbers the new version max(version)+1 inside the write transaction, awaits `make(version)` to
   * build it (seal the key with the version in the associated data), inserts it and, when `activate`,
   * points the identity at it with `activatedAt = at`. The identity's `updatedAt` becomes `at`.
   * `make` runs while the transaction holds the write lock, so it should be quick (one KMS call).
   * Identifiers and `activatedAt` inside the made version are ignored: the arguments and the
   * computed number are stored.
   * With `quota`, refused (before `make` runs) when the identity has `quota.max` versions.
   * @returns the new version number (1-based).
   * @throws AppError `not_found` when the identity does not exist in this tenant or is deleted;
   *   `quota_exceeded`; whatever `make` throws (as an AppError).
   */
  async addVersion(
    tenantId: string,
    identityId: string,
    make: (version: number) => IdentityVersion | Promise<IdentityVersion>,
    activate: boolean,
    at: Date,
    quota?: QuotaLimit,
  ): Promise<number> {
    const atMs = toMs(at);
    return this.database.write(async (trx) => {
      const touched = await this.#updateLive(trx, tenantId, identityId, { updated_at: atMs });
      if (!touched) throw new AppError('not_found', 'Identity not found.');
      const { max } = await trx
        .selectFrom('identity_versions')
        .select((eb) => eb.fn.max('version').as('max'))
        .where('tenant_id', '=', tenantId)
        .where('identity_id', '=', identityId)
        .executeTakeFirstOrThrow();
      const version = (max === null ? 0 : Number(max)) + 1;
      // Versions are numbered from 1 without gaps and never deleted: the last number is the count.
      if (quota !== undefined && version > quota.max) throw new AppError('quota_exceeded', quota.detail);
      const made = await make(version);
      await trx
        .insertInto('identity_versions')
        .values(toVersionRow(tenantId, identityId, version, made, activate ? at : undefined))
        .execute();
      if (activate) {
        await this.#update(trx, tenantId, identityId).set({ active_version: version }).execute();
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
    await this.database.write(async (trx) => {
      const pointed = await this.#updateLive(trx, tenantId, identityId, {
        active_version: version,
        updated_at: atMs,
      });
      if (!pointed) throw new Unchanged(undefined);
      const stamped = await changedAny(
        this.#updateVersion(trx, tenantId, identityId, version).set({
          activated_at: atMs,
          activate_at: null,
        }),
      );
      // Rolls back the identity update too: never point at a version that does not exist.
      if (!stamped) throw new Unchanged(undefined);
    });
  }

  /**
   * Sets `deletedAt` (and `updatedAt`) to `at`, unless enabled, not deleted mappings name the
   * identity: then nothing changes and their number is returned. The check and the delete are one
   * write transaction, serialized with every other write (see StoreDatabase), so a mapping created or
   * enabled meanwhile cannot end up naming a deleted identity (createMapping and updateMapping check
   * the other way round, with {@link requireLiveIdentity}). Versions stay for audit. A second call
   * keeps the first `deletedAt`; changes nothing for an unknown identity or another tenant's.
   * @returns the number of enabled mappings that kept the identity; 0 otherwise.
   */
  async softDeleteIdentity(tenantId: string, identityId: string, at: Date): Promise<number> {
    const atMs = toMs(at);
    return this.database.write(async (trx) => {
      const inUse = await this.#countActiveMappings(trx, tenantId, identityId);
      if (inUse > 0) throw new Unchanged(inUse);
      const deleted = await this.#updateLive(trx, tenantId, identityId, {
        deleted_at: atMs,
        updated_at: atMs,
      });
      if (!deleted) throw new Unchanged(0);
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
    await this.database.write(async (trx) => {
      const updated = await this.#updateLive(trx, tenantId, identityId, {
        updated_at: atMs,
        ...(changes.name !== undefined ? { name: changes.name } : {}),
        ...(changes.disabled !== undefined ? { disabled: toFlag(changes.disabled) } : {}),
      });
      if (!updated) throw new Unchanged(undefined);
    });
  }

  /** Earliest `activateAt` first, then identity id and version. */
  async listDueActivations(now: Date): Promise<DueActivation[]> {
    const due = this.#scheduledOfLiveIdentities()
      .select(['v.tenant_id', 'v.identity_id', 'v.version', 'v.activate_at'])
      .where('v.activate_at', '<=', toMs(now));
    return this.database.all(
      due.orderBy('v.activate_at').orderBy('v.identity_id').orderBy('v.version'),
      (r): DueActivation => ({
        tenantId: r.tenant_id,
        identityId: r.identity_id,
        version: Number(r.version),
        activateAt: fromMs(r.activate_at ?? 0),
      }),
    );
  }

  async clearScheduledActivation(tenantId: string, identityId: string, version: number): Promise<boolean> {
    return this.database.write(async (trx) => {
      const cleared = await changedAny(
        this.#updateVersion(trx, tenantId, identityId, version)
          .where('activate_at', 'is not', null)
          .set({ activate_at: null }),
      );
      if (!cleared) throw new Unchanged(false);
      return true;
    });
  }

  async nextActivationAt(): Promise<Date | undefined> {
    const earliest = this.#scheduledOfLiveIdentities().select((eb) => eb.fn.min('v.activate_at').as('at'));
    const row = await this.database.first(earliest, (r) => r.at);
    return row === null || row === undefined ? undefined : fromMs(row);
  }

  /**
   * Versions with a pending `activateAt` whose identity is not deleted: one filter for
   * listDueActivations and nextActivationAt, so a deleted identity's schedule never wakes anyone.
   */
  #scheduledOfLiveIdentities() {
    return this.database.db
      .selectFrom('identity_versions as v')
      .innerJoin('identities as i', (join) =>
        join.onRef('i.tenant_id', '=', 'v.tenant_id').onRef('i.id', '=', 'v.identity_id'),
      )
      .where('v.activate_at', 'is not', null)
      .where('i.deleted_at', 'is', null);
  }

  /** An UPDATE of identity `identityId` of `tenantId`, inside the caller's write transaction. */
  #update(trx: Transaction<Database>, tenantId: string, identityId: string) {
    return this.database.updateOfTenant(trx, 'identities', tenantId).where('id', '=', identityId);
  }

  /**
   * Applies `changes` to a live (not deleted) identity of `tenantId`, inside the caller's write
   * transaction; false when there is none (unknown, deleted or another tenant's).
   */
  #updateLive(
    trx: Transaction<Database>,
    tenantId: string,
    identityId: string,
    changes: Updateable<IdentitiesTable>,
  ): Promise<boolean> {
    return changedAny(this.#update(trx, tenantId, identityId).where('deleted_at', 'is', null).set(changes));
  }

  /** An UPDATE of one version of an identity of `tenantId`, inside the caller's write transaction. */
  #updateVersion(trx: Transaction<Database>, tenantId: string, identityId: string, version: number) {
    return this.database
      .updateOfTenant(trx, 'identity_versions', tenantId)
      .where('identity_id', '=', identityId)
      .where('version', '=', version);
  }

  /** The versions of one identity of `tenantId`. */
  #versions(tenantId: string, identityId: string) {
    return this.database.ofTenant('identity_versions', tenantId).where('identity_id', '=', identityId);
  }
}

/**
 * For the mappings aggregate, inside its write transaction (see softDeleteIdentity).
 * @throws AppError `not_found` (with `detail`) unless `identityId` is a live (not deleted)
 *   identity of `tenantId`.
 */
export async function requireLiveIdentity(
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
    ...sealedToRow(v.secret),
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
    secret: sealedFromRow(row),
    createdAt: fromMs(row.created_at),
  };
  if (row.activated_at !== null) version.activatedAt = fromMs(row.activated_at);
  if (row.activate_at !== null) version.activateAt = fromMs(row.activate_at);
  return version;
}
