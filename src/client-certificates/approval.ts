import type { Static } from '@sinclair/typebox';
import { readCsr } from '../ca/csr.js';
import { AppError } from '../errors/app-error.js';
import type { DecisionNotifier } from '../lifecycle/decisions.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import type { CsrRequest, CsrRequestStore } from '../store/index.js';
import type { CsrRequestSchema } from './schemas.js';
import type { ClientCertificateService, IssuedClientCertificateView } from './service.js';

/** A CSR as the API shows it (pending, approved with its certificate, or rejected). */
export type CsrRequestView = Static<typeof CsrRequestSchema>;

/** What one CSR submission answers: issued at once, or waiting for the operator. */
export type CsrOutcome =
  | { status: 'issued'; certificate: IssuedClientCertificateView }
  | { status: 'pending'; request: CsrRequestView };

export interface CsrApprovalDeps {
  /** `TWOWAY_CSR_APPROVAL`. */
  mode: 'automatic' | 'manual';
  store: CsrRequestStore;
  clientCertificates: Pick<ClientCertificateService, 'checkCsr' | 'issue'>;
  notifier: Pick<DecisionNotifier, 'notify'>;
  clock: Clock;
}

/**
 * CSR submission with the optional approval step (issue 16, item 7): `automatic` issues at once as
 * before; `manual` checks the CSR exactly as issuance would (signature, key policy, validity), keeps
 * it `pending`, and issues only when the operator approves. Either decision is sent to the tenant's
 * notification settings (e-mail and signed webhook). A decision is one conditional write, so two
 * operators (or two replicas) cannot both approve, or approve what the other rejected.
 */
export class CsrApprovalService {
  readonly #deps: CsrApprovalDeps;

  constructor(deps: CsrApprovalDeps) {
    this.#deps = deps;
  }

  /**
   * Submits a CSR: issued (`automatic`) or stored as pending (`manual`).
   * @throws AppError as ClientCertificateService.issue
   */
  async submit(tenantId: string, name: string, csrPem: string, validityDays?: number): Promise<CsrOutcome> {
    const { clientCertificates, store, clock } = this.#deps;
    const input = Buffer.from(csrPem, 'utf8');
    if (this.#deps.mode === 'automatic') {
      return {
        status: 'issued',
        certificate: await clientCertificates.issue(tenantId, name, input, validityDays),
      };
    }
    const { csr } = clientCertificates.checkCsr(input, validityDays);
    const request: CsrRequest = {
      id: newId('csr'),
      tenantId,
      name,
      csrPem,
      status: 'pending',
      createdAt: clock.now(),
      ...(validityDays !== undefined ? { validityDays } : {}),
    };
    await store.createCsrRequest(tenantId, request);
    return { status: 'pending', request: view(request, csr.subject) };
  }

  /** @throws AppError `not_found` */
  async get(tenantId: string, id: string): Promise<CsrRequestView> {
    return view(await this.#find(tenantId, id));
  }

  /**
   * Approves a pending CSR: the certificate is issued (and admitted at the edge) and the tenant is
   * notified. When issuance fails (a policy tightened since, a quota), the CSR is pending again.
   * @throws AppError `not_found`, `csr_not_pending`, and as ClientCertificateService.issue
   */
  async approve(
    tenantId: string,
    id: string,
  ): Promise<{ request: CsrRequestView; certificate: IssuedClientCertificateView }> {
    const { store, clock, clientCertificates, notifier } = this.#deps;
    const claimed = await this.#decide(tenantId, id, { status: 'approved', at: clock.now() });
    let certificate: IssuedClientCertificateView;
    try {
      certificate = await clientCertificates.issue(
        tenantId,
        claimed.name,
        Buffer.from(claimed.csrPem, 'utf8'),
        claimed.validityDays,
      );
    } catch (err) {
      await store.settleCsrRequest(tenantId, id, undefined);
      throw err;
    }
    await store.settleCsrRequest(tenantId, id, certificate.id);
    const request: CsrRequest = { ...claimed, clientCertificateId: certificate.id };
    await notifier.notify(tenantId, 'certificate_signing_request.approved', {
      objectId: id,
      name: claimed.name,
      subject: certificate.subject,
      clientCertificateId: certificate.id,
      fingerprintSha256: certificate.fingerprintSha256,
      notAfter: certificate.notAfter,
    });
    return { request: view(request, certificate.subject), certificate };
  }

  /**
   * Rejects a pending CSR (nothing is issued) and notifies the tenant.
   * @throws AppError `not_found`, `csr_not_pending`
   */
  async reject(tenantId: string, id: string, reason?: string): Promise<CsrRequestView> {
    const { clock, notifier } = this.#deps;
    const rejected = await this.#decide(tenantId, id, {
      status: 'rejected',
      at: clock.now(),
      ...(reason !== undefined ? { reason } : {}),
    });
    const shown = view(rejected);
    await notifier.notify(tenantId, 'certificate_signing_request.rejected', {
      objectId: id,
      name: rejected.name,
      subject: shown.subject,
      ...(reason !== undefined ? { reason } : {}),
    });
    return shown;
  }

  async #decide(
    tenantId: string,
    id: string,
    decision: Parameters<CsrRequestStore['decideCsrRequest']>[2],
  ): Promise<CsrRequest> {
    const decided = await this.#deps.store.decideCsrRequest(tenantId, id, decision);
    if (decided === undefined) throw new AppError('not_found', 'No such certificate signing request.');
    if (decided === false)
      throw new AppError('csr_not_pending', 'This certificate signing request was already decided.');
    return decided;
  }

  async #find(tenantId: string, id: string): Promise<CsrRequest> {
    const request = await this.#deps.store.getCsrRequest(tenantId, id);
    if (request === undefined) throw new AppError('not_found', 'No such certificate signing request.');
    return request;
  }
}

/** The API view; `subject` is read from the stored CSR unless the caller has it. */
function view(request: CsrRequest, subject?: string): CsrRequestView {
  return {
    id: request.id,
    tenant: request.tenantId,
    name: request.name,
    status: request.status,
    subject: subject ?? subjectOf(request.csrPem),
    csrPem: request.csrPem,
    createdAt: request.createdAt.toISOString(),
    ...(request.validityDays !== undefined ? { validityDays: request.validityDays } : {}),
    ...(request.decidedAt ? { decidedAt: request.decidedAt.toISOString() } : {}),
    ...(request.reason !== undefined ? { reason: request.reason } : {}),
    ...(request.clientCertificateId !== undefined
      ? { clientCertificateId: request.clientCertificateId }
      : {}),
  };
}

/** The CSR's subject (it was verified when submitted); `''` when it no longer reads. */
function subjectOf(csrPem: string): string {
  try {
    return readCsr(Buffer.from(csrPem, 'utf8')).subject;
  } catch {
    return '';
  }
}
