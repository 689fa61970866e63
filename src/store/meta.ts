/** Deployment facts: table `meta` (key/value), and the revision counter the plumbing keeps. */
import { asBuffer } from './columns.js';
import { Aggregate } from './database.js';
import type { MetaStore } from './types.js';

/** {@link MetaStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyMetaStore extends Aggregate implements MetaStore {
  async getMeta(key: string): Promise<Buffer | undefined> {
    const value = this.database.db.selectFrom('meta').select('value').where('key', '=', key);
    return this.database.first(value, (row) => asBuffer(row.value));
  }

  /** Inserts or replaces. */
  async setMeta(key: string, value: Buffer): Promise<void> {
    await this.database.write((trx) =>
      trx
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute(),
    );
  }

  /** 0 on a fresh database; +1 per committed write transaction that changed data. */
  async getRevision(): Promise<number> {
    return this.database.readRevision();
  }
}
