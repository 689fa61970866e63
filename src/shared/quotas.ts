/**
 * Per-tenant quotas (TWOWAY_QUOTA_*): how many objects one tenant may keep, so that one tenant's
 * key cannot grow the database, the runtime's indexes and every list without bound. A write past a
 * quota answers `409 quota_exceeded` and stores nothing; the count is taken in the write transaction
 * of the insert (store/quota.ts), so concurrent requests cannot overshoot.
 */

/** The quotas of config.ts, one number each. */
export interface Quotas {
  /** Live (not deleted) identities per tenant. */
  identities: number;
  /** Versions of one identity (never deleted: they are the record of what was presented). */
  versionsPerIdentity: number;
  /** Live (not deleted) mappings per tenant. */
  mappings: number;
  /** Live (not deleted) client certificates per tenant, revoked ones included. */
  clientCertificates: number;
  /** Certificates the platform CA issues to one tenant in any 24 hours (deleted ones count). */
  issuedPerDay: number;
  /** E-mail addresses plus webhook URLs of one tenant's notification settings. */
  notificationTargets: number;
}

/** One quota as the store checks it inside a write transaction. */
export interface QuotaLimit {
  /** The most rows allowed: the write fails with `quota_exceeded` when this many exist already. */
  max: number;
  /** The `quota_exceeded` detail: what is counted, the quota and the setting that raises it. */
  detail: string;
}

/**
 * The limit for `max` (undefined: no quota, as for services built without one in tests), with a
 * detail that names the count, the quota's setting and what to do.
 */
export function quotaLimit(
  max: number | undefined,
  what: string,
  setting: string,
  remedy: string,
): QuotaLimit | undefined {
  if (max === undefined) return undefined;
  return { max, detail: `The quota of ${max} ${what} is reached (${setting}); ${remedy}` };
}

/** The quotas from the configuration's `quota*` settings (config.ts, TWOWAY_QUOTA_*). */
export function quotasOf(config: {
  quotaIdentities: number;
  quotaVersionsPerIdentity: number;
  quotaMappings: number;
  quotaClientCertificates: number;
  quotaIssuedPerDay: number;
  quotaNotificationTargets: number;
}): Quotas {
  return {
    identities: config.quotaIdentities,
    versionsPerIdentity: config.quotaVersionsPerIdentity,
    mappings: config.quotaMappings,
    clientCertificates: config.quotaClientCertificates,
    issuedPerDay: config.quotaIssuedPerDay,
    notificationTargets: config.quotaNotificationTargets,
  };
}
