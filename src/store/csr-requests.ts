/** CSRs waiting for the operator (`TWOWAY_CSR_APPROVAL=manual`): table `certificate_signing_requests`. */
import type { Selectable } from 'kysely';
import { fromMs, toMs } from './columns.js';
import { Aggregate, changedAny } from './database.js';
import type { CertificateSigningRequestsTable } from './tables.js';
import type { CsrDecision, CsrRequest, CsrRequestStore, CsrStatus } from './types.js';

/** {@link CsrRequestStore} over the shared plumbing (database.ts: transactions, errors). */
export class KyselyCsrRequestStore extends Aggregate implements CsrRequestStore {
  /** @throws AppError `not_found` when the tenant does not exist (foreign key). */
  async createCsrRequest(tenantId: string, request: CsrRequest): Promise<void> {
    await this.database.write((trx) =>
      trx
        .insertInto('certificate_signing_requests')
        .values({
          id: request.id,
          tenant_id: tenantId,
          name: request.name,
          csr_pem: request.csrPem,
          validity_days: request.validityDays ?? null,
          status: request.status,
          client_certificate_id: null,
          reason: null,
          created_at: toMs(request.createdAt),
          decided_at: null,
        })
        .execute(),
    );
  }

  async getCsrRequest(tenantId: string, id: string): Promise<CsrRequest | undefined> {
    const query = this.database.ofTenant('certificate_signing_requests', tenantId).where('id', '=', id);
    return this.database.first(query, toCsrRequest);
  }

  async decideCsrRequest(
    tenantId: string,
    id: string,
    decision: CsrDecision,
  ): Promise<CsrRequest | false | undefined> {
    const decided = await this.database.write(async (trx) =>
      changedAny(
        this.database
          .updateOfTenant(trx, 'certificate_signing_requests', tenantId)
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .set({
            status: decision.status,
            decided_at: toMs(decision.at),
            reason: decision.status === 'rejected' ? (decision.reason ?? null) : null,
          }),
      ),
    );
    const request = await this.getCsrRequest(tenantId, id);
    if (request === undefined) return undefined;
    return decided ? request : false;
  }

  async settleCsrRequest(
    tenantId: string,
    id: string,
    clientCertificateId: string | undefined,
  ): Promise<void> {
    await this.database.write((trx) =>
      this.database
        .updateOfTenant(trx, 'certificate_signing_requests', tenantId)
        .where('id', '=', id)
        .set(
          clientCertificateId === undefined
            ? { status: 'pending', decided_at: null }
            : { client_certificate_id: clientCertificateId },
        )
        .execute(),
    );
  }
}

function toCsrRequest(row: Selectable<CertificateSigningRequestsTable>): CsrRequest {
  const request: CsrRequest = {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    csrPem: row.csr_pem,
    status: row.status as CsrStatus,
    createdAt: fromMs(row.created_at),
  };
  if (row.validity_days !== null) request.validityDays = row.validity_days;
  if (row.client_certificate_id !== null) request.clientCertificateId = row.client_certificate_id;
  if (row.reason !== null) request.reason = row.reason;
  if (row.decided_at !== null) request.decidedAt = fromMs(row.decided_at);
  return request;
}
