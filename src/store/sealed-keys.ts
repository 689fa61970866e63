/**
 * Key custody across aggregates: every row holding a sealed secret (identity versions, the platform
 * CA and the platform outbound CA, webhook signing secrets, connection secrets), for `twoway kms rotate`. Only the wrapped DEK and its `kekId` are
 * ever rewritten; ciphertexts stay as they are.
 */
import { sql } from 'kysely';
import { asBuffer, sealedFromRow } from './columns.js';
import { Aggregate } from './database.js';
import type { SealedKeyChange, SealedKeyRef, SealedKeyRow, SealedKeyStore } from './types.js';

/** {@link SealedKeyStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselySealedKeyStore extends Aggregate implements SealedKeyStore {
  async listSealedKeys(options: { limit: number; excludingKekId?: string }): Promise<SealedKeyRow[]> {
    const { db } = this.database;
    const { limit, excludingKekId } = options;
    const rows: SealedKeyRow[] = [];
    let versions = db.selectFrom('identity_versions').selectAll();
    if (excludingKekId !== undefined) versions = versions.where('kek_id', '<>', excludingKekId);
    for (const row of await this.database.read(() =>
      versions.orderBy('tenant_id').orderBy('identity_id').orderBy('version').limit(limit).execute(),
    )) {
      const ref = {
        kind: 'identity_key' as const,
        tenantId: row.tenant_id,
        identityId: row.identity_id,
        version: Number(row.version),
      };
      rows.push({ ref, secret: sealedFromRow(row) });
    }
    for (const [table, kind] of [
      ['platform_ca', 'ca_key'],
      ['platform_outbound_ca', 'outbound_ca_key'],
    ] as const) {
      let ca = db.selectFrom(table).selectAll();
      if (excludingKekId !== undefined) ca = ca.where('kek_id', '<>', excludingKekId);
      for (const row of await this.database.read(() => ca.orderBy('role').execute())) {
        const ref = { kind, role: row.role as 'root' | 'issuing', certificatePem: row.certificate_pem };
        rows.push({ ref, secret: sealedFromRow(row) });
      }
    }
    let secrets = db
      .selectFrom('notification_settings')
      .selectAll()
      .where('webhook_secret_kek_id', 'is not', null);
    if (excludingKekId !== undefined) secrets = secrets.where('webhook_secret_kek_id', '<>', excludingKekId);
    for (const row of await this.database.read(() => secrets.orderBy('tenant_id').limit(limit).execute())) {
      if (row.webhook_secret_ciphertext === null || row.webhook_secret_iv === null) continue;
      if (row.webhook_secret_wrapped_dek === null || row.webhook_secret_kek_id === null) continue;
      const secret = {
        ciphertext: asBuffer(row.webhook_secret_ciphertext),
        iv: asBuffer(row.webhook_secret_iv),
        wrappedDek: asBuffer(row.webhook_secret_wrapped_dek),
        kekId: row.webhook_secret_kek_id,
      };
      rows.push({ ref: { kind: 'webhook_secret', tenantId: row.tenant_id }, secret });
    }
    let connections = db.selectFrom('connections').selectAll().where('secret_kek_id', 'is not', null);
    if (excludingKekId !== undefined) connections = connections.where('secret_kek_id', '<>', excludingKekId);
    for (const row of await this.database.read(() =>
      connections.orderBy('tenant_id').orderBy('id').limit(limit).execute(),
    )) {
      if (row.secret_ciphertext === null || row.secret_iv === null) continue;
      if (row.secret_wrapped_dek === null || row.secret_kek_id === null) continue;
      const secret = {
        ciphertext: asBuffer(row.secret_ciphertext),
        iv: asBuffer(row.secret_iv),
        wrappedDek: asBuffer(row.secret_wrapped_dek),
        kekId: row.secret_kek_id,
      };
      const ref = {
        kind: 'connection_secret' as const,
        tenantId: row.tenant_id,
        connectionId: row.id,
        secretVersion: Number(row.secret_version),
      };
      rows.push({ ref, secret });
    }
    return rows.slice(0, limit);
  }

  /**
   * In one transaction that leaves the revision alone (nothing a reader sees changes), sets each
   * row's wrapped DEK and `kekId` to `to` where they are still `from`: a row changed meanwhile (a
   * new secret, or another rotation) is left as it is, so running a batch twice is harmless.
   */
  async rewrapSealedKeys(changes: SealedKeyChange[]): Promise<number> {
    return this.database.append(async (trx) => {
      let changed = 0;
      for (const { ref, from, to } of changes) {
        changed += await rewrapRow(trx, ref, from, to);
      }
      return changed;
    });
  }

  async countSealedKeys(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const row of await this.listSealedKeys({ limit: Number.MAX_SAFE_INTEGER })) {
      counts[row.secret.kekId] = (counts[row.secret.kekId] ?? 0) + 1;
    }
    return counts;
  }
}

type Trx = Parameters<Parameters<Aggregate['database']['append']>[0]>[0];

/** The table of a sealed row, its wrapped-DEK and KEK columns, and the columns that find the row. */
function targetOf(ref: SealedKeyRef): { table: string; dek: string; kek: string; keys: [string, unknown][] } {
  switch (ref.kind) {
    case 'identity_key':
      return {
        table: 'identity_versions',
        dek: 'wrapped_dek',
        kek: 'kek_id',
        keys: [
          ['tenant_id', ref.tenantId],
          ['identity_id', ref.identityId],
          ['version', ref.version],
        ],
      };
    case 'ca_key':
      return { table: 'platform_ca', dek: 'wrapped_dek', kek: 'kek_id', keys: [['role', ref.role]] };
    case 'outbound_ca_key':
      return { table: 'platform_outbound_ca', dek: 'wrapped_dek', kek: 'kek_id', keys: [['role', ref.role]] };
    case 'connection_secret':
      return {
        table: 'connections',
        dek: 'secret_wrapped_dek',
        kek: 'secret_kek_id',
        keys: [
          ['tenant_id', ref.tenantId],
          ['id', ref.connectionId],
        ],
      };
    case 'webhook_secret':
      return {
        table: 'notification_settings',
        dek: 'webhook_secret_wrapped_dek',
        kek: 'webhook_secret_kek_id',
        keys: [['tenant_id', ref.tenantId]],
      };
  }
}

/** Sets the row's wrapped DEK and KEK to `to` if they are still `from`; the number of rows changed. */
async function rewrapRow(
  trx: Trx,
  ref: SealedKeyRef,
  from: SealedKeyChange['from'],
  to: SealedKeyChange['to'],
): Promise<number> {
  const { table, dek, kek, keys } = targetOf(ref);
  const conditions = [
    ...keys.map(([column, value]) => sql`${sql.ref(column)} = ${value}`),
    sql`${sql.ref(kek)} = ${from.kekId}`,
    sql`${sql.ref(dek)} = ${from.wrapped}`,
  ];
  const result =
    await sql`update ${sql.table(table)} set ${sql.ref(dek)} = ${to.wrapped}, ${sql.ref(kek)} = ${to.kekId}
    where ${sql.join(conditions, sql` and `)}`.execute(trx);
  return Number(result.numAffectedRows ?? 0);
}
