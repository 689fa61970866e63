import { type Kysely, type Migration, sql } from 'kysely';

/**
 * One public certificate may be registered by several tenants (issue 11, item 9). Until now a live
 * fingerprint was unique across the deployment, so registration was first-come: tenant B could
 * register tenant A's public certificate to lock A out, and A's `409 certificate_in_use` told A that
 * someone had. Registration proves nothing (the certificate is public); the TLS handshake proves
 * possession of its key and the API key names the tenant, so the edge admits by (fingerprint, tenant
 * of the API key) and the fingerprint only has to be unique within a tenant.
 *
 * - `client_certificates_live_tenant_fingerprint_key`: unique (tenant_id, fingerprint_sha256) among
 *   rows that are not deleted; created before the old index is dropped, so no moment is unguarded.
 * - `client_certificates_live_fingerprint_idx`: the old index, no longer unique, for the edge's
 *   lookup by fingerprint alone (platform-issued certificates another replica just issued).
 *
 * Every statement is `if [not] exists`, as in 0001, so a migration cut short is simply run again.
 * Same SQL on SQLite and PostgreSQL (both have partial indexes and `drop index if exists`).
 */
export function sharedClientCertificates(): Migration {
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createIndex('client_certificates_live_tenant_fingerprint_key')
        .ifNotExists()
        .unique()
        .on('client_certificates')
        .columns(['tenant_id', 'fingerprint_sha256'])
        .where(sql.ref('deleted_at'), 'is', null)
        .execute();
      await db.schema.dropIndex('client_certificates_live_fingerprint_key').ifExists().execute();
      await db.schema
        .createIndex('client_certificates_live_fingerprint_idx')
        .ifNotExists()
        .on('client_certificates')
        .column('fingerprint_sha256')
        .where(sql.ref('deleted_at'), 'is', null)
        .execute();
    },
  };
}
