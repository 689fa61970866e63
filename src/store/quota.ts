/** The check of a per-tenant quota, inside the write transaction of the insert it guards. */
import { type SelectQueryBuilder, sql } from 'kysely';
import { AppError } from '../errors/app-error.js';
import type { QuotaLimit } from './types.js';

/**
 * Counts the rows of `rows` (a query inside the caller's write transaction, which holds the write
 * lock, so no other insert can slip in between the count and the insert) and refuses when `quota.max`
 * of them exist already. Does nothing without a quota.
 * @throws AppError `quota_exceeded` with `quota.detail`
 */
export async function enforceQuota<DB, TB extends keyof DB, O>(
  rows: SelectQueryBuilder<DB, TB, O>,
  quota: QuotaLimit | undefined,
): Promise<void> {
  if (quota === undefined) return;
  const counted = await rows
    .clearSelect()
    .select(sql<number | string>`count(*)`.as('count'))
    .executeTakeFirstOrThrow();
  if (Number((counted as { count: number | string }).count) >= quota.max) {
    throw new AppError('quota_exceeded', quota.detail);
  }
}
