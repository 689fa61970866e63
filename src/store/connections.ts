/**
 * The connections aggregate: table `connections` (saved external API requests). A connection may
 * name an identity (identities.ts) for its client-certificate switch.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import { AppError } from '../errors/app-error.js';
import { type KeyOrder, readPage } from '../shared/paging.js';
import { fromFlag, fromMs, toFlag, toMs } from './columns.js';
import { Aggregate, changedAny, Unchanged } from './database.js';
import { requireLiveIdentity } from './identities.js';
import { enforceQuota } from './quota.js';
import type { ConnectionsTable, Database } from './tables.js';
import type {
  Connection,
  ConnectionAuthSettings,
  ConnectionAuthType,
  ConnectionStore,
  Page,
  PageRequest,
  QuotaLimit,
  SealedSecret,
} from './types.js';

/** A tenant's connections: oldest first. */
const CONNECTION_ORDER: KeyOrder<Selectable<ConnectionsTable>> = {
  list: 'connections',
  columns: ['created_at', 'id'],
  direction: 'asc',
  types: ['integer', 'string'],
};

/** {@link ConnectionStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyConnectionStore extends Aggregate implements ConnectionStore {
  /**
   * The name check runs inside the write transaction (which holds the write lock), so two creates
   * of one name cannot both pass it; the unique index on (tenant, name) is the second net.
   * With `quota`, refused while `quota.max` connections of the tenant exist.
   * @throws AppError `connection_exists`, `not_found` (no such tenant, or the identity an enabled
   *   connection with the switch on names is not live in this tenant), `quota_exceeded`.
   */
  async createConnection(tenantId: string, connection: Connection, quota?: QuotaLimit): Promise<void> {
    await this.database.write(async (trx) => {
      await this.#checkFields(trx, tenantId, connection);
      await enforceQuota(trx.selectFrom('connections').where('tenant_id', '=', tenantId), quota);
      await trx
        .insertInto('connections')
        .values({
          ...toConnectionFields(connection),
          id: connection.id,
          tenant_id: tenantId,
          created_at: toMs(connection.createdAt),
        })
        .execute();
    });
  }

  async getConnection(tenantId: string, connectionId: string): Promise<Connection | undefined> {
    return this.database.first(
      this.database.ofTenant('connections', tenantId).where('id', '=', connectionId),
      toConnection,
    );
  }

  /** Ordered by createdAt then id. @throws AppError `invalid_cursor` */
  async listConnections(tenantId: string, request: PageRequest): Promise<Page<Connection>> {
    const rows = this.database.ofTenant('connections', tenantId);
    return readPage(this.database, rows, CONNECTION_ORDER, [tenantId], request, toConnection);
  }

  /** @throws as {@link createConnection}; nothing changes for an unknown or another tenant's connection. */
  async updateConnection(tenantId: string, connection: Connection): Promise<boolean> {
    return this.database.write(async (trx) => {
      const update = this.database
        .updateOfTenant(trx, 'connections', tenantId)
        .where('id', '=', connection.id)
        .set(toConnectionFields(connection));
      if (!(await changedAny(update))) throw new Unchanged(false);
      // After the update, so an unknown connection stays a no-op; a throw rolls the update back.
      await this.#checkFields(trx, tenantId, connection);
      return true;
    });
  }

  async deleteConnection(tenantId: string, connectionId: string): Promise<boolean> {
    return this.database.write(async (trx) => {
      const result = await trx
        .deleteFrom('connections')
        .where('tenant_id', '=', tenantId)
        .where('id', '=', connectionId)
        .executeTakeFirst();
      if (result.numDeletedRows === 0n) throw new Unchanged(false);
      return true;
    });
  }

  /** The name is free in the tenant (but for this connection) and the presented identity is live. */
  async #checkFields(trx: Transaction<Database>, tenantId: string, connection: Connection): Promise<void> {
    const sameName = await trx
      .selectFrom('connections')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('name', '=', connection.name)
      .where('id', '!=', connection.id)
      .executeTakeFirst();
    if (sameName !== undefined) {
      throw new AppError('connection_exists', 'This tenant already has a connection of this name.');
    }
    const { identityId, enabled } = connection.clientCertificate;
    if (identityId !== undefined && enabled && connection.enabled) {
      await requireLiveIdentity(
        trx,
        tenantId,
        identityId,
        'The identity of this connection does not exist or was deleted; name another one or turn the client certificate off.',
      );
    }
  }
}

/**
 * Enabled connections of `tenantId` with the client-certificate switch on that name `identityId`:
 * for the identities aggregate, inside its write transaction (an identity in use is not deleted).
 */
export async function countConnectionsPresenting(
  db: Kysely<Database>,
  tenantId: string,
  identityId: string,
): Promise<number> {
  const row = await db
    .selectFrom('connections')
    .select((eb) => eb.fn.countAll().as('count'))
    .where('tenant_id', '=', tenantId)
    .where('client_certificate_identity_id', '=', identityId)
    .where('client_certificate_enabled', '=', 1)
    .where('enabled', '=', 1)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** The columns an update may change; the secret's four columns are all set or all null. */
function toConnectionFields(c: Connection) {
  return {
    name: c.name,
    base_url: c.baseUrl,
    auth_type: c.authType,
    auth_json: JSON.stringify(authFields(c.auth)),
    secret_ciphertext: c.secret?.ciphertext ?? null,
    secret_iv: c.secret?.iv ?? null,
    secret_wrapped_dek: c.secret?.wrappedDek ?? null,
    secret_kek_id: c.secret?.kekId ?? null,
    secret_version: c.secretVersion,
    client_certificate_enabled: toFlag(c.clientCertificate.enabled),
    client_certificate_identity_id: c.clientCertificate.identityId ?? null,
    trust_anchors_pem: c.trustAnchorsPem ?? null,
    enabled: toFlag(c.enabled),
    updated_at: toMs(c.updatedAt),
  } satisfies Partial<ConnectionsTable>;
}

/**
 * Copies the known non-secret fields one by one rather than spreading, so that nothing a caller
 * attached to the settings (a password, a client secret) can ride along into `auth_json`.
 */
function authFields(a: ConnectionAuthSettings): ConnectionAuthSettings {
  const out: ConnectionAuthSettings = {};
  if (a.username !== undefined) out.username = a.username;
  if (a.headerName !== undefined) out.headerName = a.headerName;
  if (a.tokenUrl !== undefined) out.tokenUrl = a.tokenUrl;
  if (a.clientId !== undefined) out.clientId = a.clientId;
  if (a.scope !== undefined) out.scope = a.scope;
  if (a.audience !== undefined) out.audience = a.audience;
  if (a.clientAuthentication !== undefined) out.clientAuthentication = a.clientAuthentication;
  return out;
}

function secretOf(row: Selectable<ConnectionsTable>): SealedSecret | undefined {
  const { secret_ciphertext: ciphertext, secret_iv: iv, secret_wrapped_dek: wrapped } = row;
  if (ciphertext === null || iv === null || wrapped === null || row.secret_kek_id === null) return undefined;
  return {
    ciphertext: Buffer.from(ciphertext),
    iv: Buffer.from(iv),
    wrappedDek: Buffer.from(wrapped),
    kekId: row.secret_kek_id,
  };
}

function toConnection(row: Selectable<ConnectionsTable>): Connection {
  const connection: Connection = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    baseUrl: row.base_url,
    authType: row.auth_type as ConnectionAuthType,
    auth: authFields(JSON.parse(row.auth_json) as ConnectionAuthSettings),
    secretVersion: Number(row.secret_version),
    clientCertificate: { enabled: fromFlag(row.client_certificate_enabled) },
    enabled: fromFlag(row.enabled),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
  const secret = secretOf(row);
  if (secret !== undefined) connection.secret = secret;
  if (row.client_certificate_identity_id !== null) {
    connection.clientCertificate.identityId = row.client_certificate_identity_id;
  }
  if (row.trust_anchors_pem !== null) connection.trustAnchorsPem = row.trust_anchors_pem;
  return connection;
}
