import type { Static } from '@sinclair/typebox';
import { readCsr } from '../ca/csr.js';
import type { PlatformCa } from '../ca/platform-ca.js';
import { summarize, toPem } from '../certificates/index.js';
import { certificateStatus, DAY_MS } from '../certificates/status.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { certificateFacts } from '../http/certificate-facts.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { type Collection, everyItem, viewPage } from '../shared/paging.js';
import { type Quotas, quotaLimit } from '../shared/quotas.js';
import type {
  ClientCertificate,
  ClientCertificateQuotas,
  ClientCertificateStore,
  PageRequest,
  RevocationReason,
} from '../store/index.js';
import {
  type ClientCertificatePolicy,
  checkClientCertificate,
  checkKey,
  checkNoTenantName,
} from './policy.js';
import type { ClientCertificateSchema, IssuedClientCertificateSchema } from './schemas.js';
import { readCertificateInput } from './upload.js';

/** A client certificate as the API shows it (API.md "ClientCertificate"). */
export type ClientCertificateView = Static<typeof ClientCertificateSchema>;

/** A certificate issued from a CSR, with the certificate and its chain (issuing CA, root). */
export type IssuedClientCertificateView = Static<typeof IssuedClientCertificateSchema>;

export interface ClientCertificateServiceDeps {
  store: ClientCertificateStore;
  ca: PlatformCa;
  clock: Clock;
  policy: ClientCertificatePolicy;
  /**
   * Per-tenant quotas (TWOWAY_QUOTA_CLIENT_CERTIFICATES, TWOWAY_QUOTA_ISSUED_PER_DAY); no quota when
   * absent.
   */
  quotas?: Pick<Quotas, 'clientCertificates' | 'issuedPerDay'>;
}

/**
 * Inbound client certificates: registration of tenants' own certificates (BYOC, public part only),
 * issuance from CSRs by the platform CA, revocation (with a new CRL in the same transaction) and
 * deletion. Every change is announced to the registered listeners after it committed (the edge
 * listener's fingerprint index waits for it before the API answers, so a change takes effect for
 * the next handshake at once).
 */
export class ClientCertificateService {
  readonly #deps: ClientCertificateServiceDeps;
  readonly #listeners: ((tenantId: string) => Promise<void>)[] = [];

  constructor(deps: ClientCertificateServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Calls `listener` with the tenant's id after every committed change made through this service
   * (awaited).
   */
  onChange(listener: (tenantId: string) => Promise<void>): void {
    this.#listeners.push(listener);
  }

  /**
   * Registers an uploaded certificate (PEM or DER; see upload.ts and policy.ts for what is refused).
   * @throws AppError `private_key_not_accepted`, `unsupported_format`, `no_certificate`,
   *   `unsupported_key_type`, `weak_key`, `key_type_not_allowed`, `weak_signature`,
   *   `certificate_expired`, `certificate_not_yet_valid`, `validity_too_long`,
   *   `client_auth_not_allowed`, `client_certificate_exists` (this tenant has it; other tenants may
   *   register the same certificate, and that is never revealed), `issued_certificate_not_accepted`,
   *   `reserved_tenant_name`, `quota_exceeded` (the tenant has its quota of live client certificates;
   *   counted in the write transaction)
   */
  async register(tenantId: string, name: string, input: Buffer): Promise<ClientCertificateView> {
    const cert = readCertificateInput(input);
    // An issued certificate is registered (to its tenant) when it is issued. Uploading one again
    // would re-admit it after deletion or revocation, or put tenant A's certificate under tenant B.
    if (await this.#deps.ca.issued(cert)) {
      throw new AppError(
        'issued_certificate_not_accepted',
        'Certificates issued by the platform CA cannot be uploaded; submit a new CSR instead.',
      );
    }
    const now = this.#deps.clock.now();
    const summary = checkClientCertificate(cert, this.#deps.policy, now);
    // `urn:twoway:tenant:<id>` is how certificates the platform CA issues name their tenant, and the
    // edge passes SAN URIs on in X-Forwarded-Client-Cert: a tenant's own certificate must not name one.
    checkNoTenantName(summary.subjectAltNames);
    const record: ClientCertificate = {
      id: newId('ccr'),
      tenantId,
      name,
      source: 'uploaded',
      summary,
      certificatePem: toPem('CERTIFICATE', cert.raw),
      createdAt: now,
      updatedAt: now,
    };
    await this.#deps.store.createClientCertificate(tenantId, record, this.#quotas(now));
    await this.#announce(tenantId);
    return this.#view(record);
  }

  /**
   * Issues a client certificate from a CSR (RFC 2986) with the platform CA: the CSR's signature and
   * key are checked, the certificate is valid for `validityDays` (default
   * `TWOWAY_CLIENT_CERT_ISSUE_VALIDITY_DAYS`, at most `TWOWAY_CLIENT_CERT_MAX_VALIDITY_DAYS`) and
   * names the tenant in a `urn:twoway:tenant:<id>` URI SAN (see ca/naming.ts). It is registered at
   * once, so the edge admits it.
   * Quotas are checked before the CA signs (so a tenant past them cannot make the CA work) and
   * again in the write transaction (so concurrent requests cannot overshoot).
   * @throws AppError `invalid_csr`, `weak_signature`, `private_key_not_accepted`,
   *   `unsupported_key_type`, `weak_key`, `key_type_not_allowed`, `validity_too_long`,
   *   `quota_exceeded` (live client certificates, or certificates issued in the last 24 hours)
   */
  async issue(
    tenantId: string,
    name: string,
    csrInput: Buffer,
    validityDays?: number,
  ): Promise<IssuedClientCertificateView> {
    const { policy, ca } = this.#deps;
    const days = validityDays ?? policy.issueValidityDays;
    if (!Number.isInteger(days) || days < 1) throw new AppError('bad_request', 'validityDays must be ≥ 1.');
    if (days > policy.maxValidityDays) {
      throw new AppError('validity_too_long', `At most ${policy.maxValidityDays} days can be issued.`);
    }
    const csr = readCsr(csrInput);
    checkKey(csr.publicKey, policy);
    const { live, issued: issuedQuota } = this.#quotas(this.#deps.clock.now());
    if (live !== undefined || issuedQuota !== undefined) {
      const since = issuedQuota?.since ?? this.#deps.clock.now();
      const counts = await this.#deps.store.countClientCertificates(tenantId, since);
      if (live && counts.live >= live.max) throw new AppError('quota_exceeded', live.detail);
      if (issuedQuota && counts.issued >= issuedQuota.max)
        throw new AppError('quota_exceeded', issuedQuota.detail);
    }
    const issued = await ca.issueClientCertificate({ csr, tenantId, days, fallbackCommonName: name });
    let summary: ClientCertificate['summary'];
    try {
      summary = summarize(issued.certificate);
    } catch (err) {
      throw toAppError(err);
    }
    const now = this.#deps.clock.now();
    const record: ClientCertificate = {
      id: newId('ccr'),
      tenantId,
      name,
      source: 'issued',
      summary,
      certificatePem: issued.certificatePem,
      createdAt: now,
      updatedAt: now,
    };
    await this.#deps.store.createClientCertificate(tenantId, record, this.#quotas(now));
    await this.#announce(tenantId);
    return { ...this.#view(record), certificatePem: issued.certificatePem, chainPem: await ca.chainPem() };
  }

  /** One page of the tenant's live certificates, oldest first. @throws AppError `invalid_cursor` */
  async list(tenantId: string, request: PageRequest): Promise<Collection<ClientCertificateView>> {
    const page = await this.#deps.store.listClientCertificates(tenantId, request);
    return viewPage(page, (records) => records.map((r) => this.#view(r)));
  }

  /** Every live certificate of the tenant (the expiry scan), read page by page. */
  listAll(tenantId: string): Promise<ClientCertificateView[]> {
    return everyItem((request) => this.list(tenantId, request));
  }

  /** @throws AppError `not_found` */
  async get(tenantId: string, id: string): Promise<ClientCertificateView> {
    const record = await this.#deps.store.getClientCertificate(tenantId, id);
    if (!record) throw new AppError('not_found', 'No such client certificate.');
    return this.#view(record);
  }

  /**
   * Revokes a certificate: the edge refuses it from the next handshake and the next request on open
   * connections; an issued one is listed in a new CRL made in the same transaction. Revoking twice
   * keeps the first revocation.
   * @throws AppError `not_found`
   */
  async revoke(
    tenantId: string,
    id: string,
    reason: RevocationReason = 'unspecified',
  ): Promise<ClientCertificateView> {
    const { store, ca, clock } = this.#deps;
    const record = await store.revokeClientCertificate(tenantId, id, clock.now(), reason, ca.crlMaker());
    if (!record) throw new AppError('not_found', 'No such client certificate.');
    ca.forgetCachedCrl();
    await this.#announce(tenantId);
    return this.#view(record);
  }

  /**
   * Deletes a certificate (soft: the row stays for the CRL and the audit). The edge refuses it from
   * the next handshake; an issued one is revoked first (`cessationOfOperation`).
   * @throws AppError `not_found`
   */
  async delete(tenantId: string, id: string): Promise<void> {
    const { store, ca, clock } = this.#deps;
    const done = await store.deleteClientCertificate(tenantId, id, clock.now(), ca.crlMaker());
    if (!done) throw new AppError('not_found', 'No such client certificate.');
    ca.forgetCachedCrl();
    await this.#announce(tenantId);
  }

  /** The quotas of a certificate created at `now` (the issued-per-day window ends at `now`). */
  #quotas(now: Date): ClientCertificateQuotas {
    const quotas = this.#deps.quotas;
    const live = quotaLimit(
      quotas?.clientCertificates,
      'client certificates in this tenant',
      'TWOWAY_QUOTA_CLIENT_CERTIFICATES',
      'delete one first.',
    );
    const issued = quotaLimit(
      quotas?.issuedPerDay,
      'certificates issued to this tenant in 24 hours',
      'TWOWAY_QUOTA_ISSUED_PER_DAY',
      'try again later.',
    );
    return {
      ...(live ? { live } : {}),
      ...(issued ? { issued: { ...issued, since: new Date(now.getTime() - DAY_MS) } } : {}),
    };
  }

  async #announce(tenantId: string): Promise<void> {
    for (const listener of this.#listeners) await listener(tenantId);
  }

  #view(record: ClientCertificate): ClientCertificateView {
    const s = record.summary;
    return {
      id: record.id,
      tenant: record.tenantId,
      name: record.name,
      source: record.source,
      status: record.revokedAt
        ? 'revoked'
        : (certificateStatus(s.notAfter, this.#deps.clock.now()) as 'active' | 'expiring' | 'expired'),
      ...certificateFacts(s),
      createdAt: record.createdAt.toISOString(),
      ...(record.revokedAt ? { revokedAt: record.revokedAt.toISOString() } : {}),
    };
  }
}
