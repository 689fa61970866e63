/**
 * The platform CA aggregate: tables `platform_ca` (root and issuing certificate, sealed keys) and
 * `platform_crl` (the current CRL, made from the revoked issued client certificates).
 */
import type { Transaction } from 'kysely';
import { revokedIssuedSerials } from './client-certificates.js';
import { asBuffer, fromMs, sealedFromRow, sealedToRow, toMs } from './columns.js';
import { Aggregate, Unchanged } from './database.js';
import type { Database } from './tables.js';
import type { CrlMaker, PlatformCaCertificate, PlatformCaStore, StoredCrl } from './types.js';

/** The two CA tables: the platform CA (tenants' CSRs) and the platform outbound CA. */
type CaTable = 'platform_ca' | 'platform_outbound_ca';

type CaPair = { root: PlatformCaCertificate; issuing: PlatformCaCertificate };

/** {@link PlatformCaStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyPlatformCaStore extends Aggregate implements PlatformCaStore {
  async getPlatformCa(): Promise<CaPair | undefined> {
    return this.#get('platform_ca');
  }

  /** Inserts both certificates in one transaction unless a platform CA exists (then false). */
  async createPlatformCa(root: PlatformCaCertificate, issuing: PlatformCaCertificate): Promise<boolean> {
    return this.#create('platform_ca', root, issuing);
  }

  async getPlatformOutboundCa(): Promise<CaPair | undefined> {
    return this.#get('platform_outbound_ca');
  }

  /** Inserts both certificates unless a platform outbound CA exists (then false). */
  async createPlatformOutboundCa(
    root: PlatformCaCertificate,
    issuing: PlatformCaCertificate,
  ): Promise<boolean> {
    return this.#create('platform_outbound_ca', root, issuing);
  }

  async #get(table: CaTable): Promise<CaPair | undefined> {
    const rows = await this.database.read(() => this.database.db.selectFrom(table).selectAll().execute());
    const find = (role: 'root' | 'issuing'): PlatformCaCertificate | undefined => {
      const row = rows.find((r) => r.role === role);
      return (
        row && {
          role,
          certificatePem: row.certificate_pem,
          secret: sealedFromRow(row),
          createdAt: fromMs(row.created_at),
        }
      );
    };
    const root = find('root');
    const issuing = find('issuing');
    return root && issuing ? { root, issuing } : undefined;
  }

  async #create(
    table: CaTable,
    root: PlatformCaCertificate,
    issuing: PlatformCaCertificate,
  ): Promise<boolean> {
    return this.database.write(async (trx) => {
      const existing = await trx.selectFrom(table).select('role').limit(1).executeTakeFirst();
      if (existing) throw new Unchanged(false);
      await trx
        .insertInto(table)
        .values(
          [root, issuing].map((ca, i) => ({
            role: i === 0 ? 'root' : 'issuing',
            certificate_pem: ca.certificatePem,
            ...sealedToRow(ca.secret),
            created_at: toMs(ca.createdAt),
          })),
        )
        .execute();
      return true;
    });
  }

  async getCrl(): Promise<StoredCrl | undefined> {
    const crl = this.database.db.selectFrom('platform_crl').selectAll().where('id', '=', 1);
    return this.database.first(crl, (row) => ({
      crlNumber: Number(row.crl_number),
      der: asBuffer(row.der),
      thisUpdate: fromMs(row.this_update),
      nextUpdate: fromMs(row.next_update),
    }));
  }

  async refreshCrl(crl: CrlMaker): Promise<StoredCrl> {
    return this.database.write((trx) => storeCrl(trx, crl));
  }
}

/**
 * Makes the next CRL (CRLNumber + 1, RFC 5280 §5.2.3) from every revoked issued certificate (deleted
 * ones too) and stores it, inside the caller's write transaction: refreshCrl, and the client
 * certificates aggregate when it revokes an issued certificate.
 */
export async function storeCrl(trx: Transaction<Database>, crl: CrlMaker): Promise<StoredCrl> {
  const revoked = await revokedIssuedSerials(trx);
  const current = await trx
    .selectFrom('platform_crl')
    .select('crl_number')
    .where('id', '=', 1)
    .executeTakeFirst();
  const crlNumber = (current === undefined ? 0 : Number(current.crl_number)) + 1;
  const made = await crl(revoked, crlNumber);
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
