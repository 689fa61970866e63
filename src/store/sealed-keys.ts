/**
 * Key custody across aggregates: every row holding a sealed secret (identity versions, the platform
 * CA, webhook signing secrets), for `twoway kms rotate`. Only the wrapped DEK and its `kekId` are
 * ever rewritten; ciphertexts stay as they are.
 */
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
    let ca = db.selectFrom('platform_ca').selectAll();
    if (excludingKekId !== undefined) ca = ca.where('kek_id', '<>', excludingKekId);
    for (const row of await this.database.read(() => ca.orderBy('role').execute())) {
      const ref = {
        kind: 'ca_key' as const,
        role: row.role as 'root' | 'issuing',
        certificatePem: row.certificate_pem,
      };
      rows.push({ ref, secret: sealedFromRow(row) });
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
        const result = await rewrapQuery(trx, ref, from, to).executeTakeFirst();
        changed += Number(result.numUpdatedRows);
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

function rewrapQuery(trx: Trx, ref: SealedKeyRef, from: SealedKeyChange['from'], to: SealedKeyChange['to']) {
  switch (ref.kind) {
    case 'identity_key':
      return trx
        .updateTable('identity_versions')
        .set({ wrapped_dek: to.wrapped, kek_id: to.kekId })
        .where('tenant_id', '=', ref.tenantId)
        .where('identity_id', '=', ref.identityId)
        .where('version', '=', ref.version)
        .where('kek_id', '=', from.kekId)
        .where('wrapped_dek', '=', from.wrapped);
    case 'ca_key':
      return trx
        .updateTable('platform_ca')
        .set({ wrapped_dek: to.wrapped, kek_id: to.kekId })
        .where('role', '=', ref.role)
        .where('kek_id', '=', from.kekId)
        .where('wrapped_dek', '=', from.wrapped);
    case 'webhook_secret':
      return trx
        .updateTable('notification_settings')
        .set({ webhook_secret_wrapped_dek: to.wrapped, webhook_secret_kek_id: to.kekId })
        .where('tenant_id', '=', ref.tenantId)
        .where('webhook_secret_kek_id', '=', from.kekId)
        .where('webhook_secret_wrapped_dek', '=', from.wrapped);
  }
}
