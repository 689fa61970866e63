import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Name } from '@peculiar/asn1-x509';
import {
  type CertificateSummary,
  type ChainEntry,
  chainEntry,
  fingerprintSha256,
  formatName,
  type IdentityParser,
  type IdentityUpload,
  isCertificateError,
  readTrustAnchors,
} from '../certificates/index.js';
import { presentationRefusal } from '../certificates/status.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { CERTIFICATE_CODES } from '../forward/proxy.js';
import type { IdentityService } from '../identities/service.js';
import { DESTINATION_BLOCKED, parseForwardUrl } from '../net/address-guard.js';
import type { Clock } from '../shared/clock.js';
import { type ProbeResult, probe } from './probe.js';

/**
 * The tester's plain-language verdict (API.md "Lifecycle", plus `certificate_invalid` and
 * `handshake_failed`, which the list needs to stay truthful):
 * - `ok`: the server asked for a client certificate, accepted ours, and answered HTTP;
 * - `server_did_not_request_certificate`: TLS worked but the server never asked for one (our
 *   certificate was not sent; whatever the server answered, it was not mTLS);
 * - `server_rejected_certificate`: the server asked, we sent it, and the server ended the
 *   connection (alert or reset) instead of answering, or answered nginx's "SSL certificate error";
 * - `server_untrusted`: the server's certificate chain did not verify against the trust anchors
 *   (or system roots), or its name does not match the URL;
 * - `unreachable`: the name does not resolve, or the connection was refused or dropped before TLS;
 * - `timeout`: nothing (or not all) came back within the timeout;
 * - `handshake_failed`: TLS failed for another reason (no common protocol or cipher, not TLS at all);
 * - `certificate_invalid`: the uploaded certificate did not pass the upload checks (see
 *   `certificate.error.code`); the server was still probed, without a client certificate.
 */
export type TestVerdict =
  | 'ok'
  | 'server_did_not_request_certificate'
  | 'server_rejected_certificate'
  | 'server_untrusted'
  | 'unreachable'
  | 'timeout'
  | 'handshake_failed'
  | 'certificate_invalid';

/** The report of `POST /v1/tenants/{tenant}/identity-tests`. Nothing of it is stored. */
export interface IdentityTestReport {
  url: string;
  verdict: TestVerdict;
  /** One sentence for a person. */
  message: string;
  certificate: {
    source: 'upload' | 'identity';
    identityId?: string;
    version?: number;
    ok: boolean;
    summary?: {
      subject: string;
      issuer: string;
      serialNumber: string;
      fingerprintSha256: string;
      notBefore: string;
      notAfter: string;
      keyType: string;
      keySize?: number;
      curve?: string;
      subjectAltNames: string[];
      chain: { subject: string; issuer: string; notAfter: string; fingerprintSha256: string }[];
    };
    error?: { code: string; detail: string };
  };
  connection: { addresses: string[]; protocol?: string; cipher?: string };
  handshake: {
    completed: boolean;
    /** null when it could not be read (the handshake was cut short before the server's flight ended). */
    certificateRequested: boolean | null;
    /** The CA names of the server's CertificateRequest, RFC 4514; null when none was read. */
    acceptableCaNames: string[] | null;
    clientCertificateSent: boolean;
    error?: { code: string; message: string };
  };
  server: {
    chain: {
      subject: string;
      issuer: string;
      notBefore: string;
      notAfter: string;
      fingerprintSha256: string;
    }[];
    /** null when the handshake ended before the chain was judged. */
    trusted: boolean | null;
    trustError?: string;
  };
  http: { status: number; headers: Record<string, string>; body: string; truncated: boolean } | null;
  timingsMs: { dns?: number; tcp?: number; tls?: number; firstByte?: number; total: number };
}

/** What to test. Exactly one of `upload` and `identityId`. */
export interface IdentityTestInput {
  url: string;
  upload?: IdentityUpload;
  identityId?: string;
  trustAnchorsPem?: string;
  /** Lower than the configured timeout only. */
  timeoutMs?: number;
}

/** Socket errors that mean nobody (reachable) is there. */
const UNREACHABLE_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
]);

/** nginx completes the handshake and answers 400 with these pages (FIELD-NOTES). */
const NGINX_CERT_PAGES =
  /SSL certificate error|No required SSL certificate was sent|SSL certificate has expired/i;

const MAX_BODY_BYTES = 1024;

export interface IdentityTesterDeps {
  identities: Pick<IdentityService, 'getRuntimeIdentity' | 'openPrivateKey'>;
  /** Reads uploads in worker threads (key derivation off the event loop). */
  parser: IdentityParser;
  clock: Clock;
  /** TWOWAY_FORWARD_ALLOW_PRIVATE: the tester follows the forward's SSRF rules exactly. */
  allowPrivate: boolean;
  /** Whole-test deadline (ms); TWOWAY_IDENTITY_TEST_TIMEOUT_MS. */
  timeoutMs: number;
}

/**
 * The certificate tester: tries an identity (an upload, or a stored one by id) against a live
 * HTTPS endpoint and reports what happened. It stores nothing: the upload is parsed in memory, the
 * key never leaves the process and is not sealed, no row, temp file or revision is written. The URL
 * goes through the forward's SSRF guard (parseForwardUrl, then guardedLookup on every resolved
 * address).
 */
export class IdentityTester {
  readonly #deps: IdentityTesterDeps;

  constructor(deps: IdentityTesterDeps) {
    this.#deps = deps;
  }

  /**
   * @throws AppError `bad_request` (neither or both of upload and identityId), `not_found`
   *   (identityId), `forward_url_invalid`, `forward_destination_blocked`, `invalid_trust_anchors`
   */
  async test(tenantId: string, input: IdentityTestInput): Promise<IdentityTestReport> {
    const url = parseForwardUrl(input.url, this.#deps.allowPrivate);
    const hasUpload =
      input.upload !== undefined &&
      [input.upload.file, input.upload.certificate, input.upload.privateKey, input.upload.chain].some(
        (b) => b !== undefined,
      );
    if (hasUpload === (input.identityId !== undefined)) {
      throw new AppError('bad_request', 'Send either an upload (PKCS#12 or PEM) or an identityId, with url.');
    }
    if (input.trustAnchorsPem !== undefined) {
      try {
        readTrustAnchors(input.trustAnchorsPem);
      } catch (err) {
        throw toAppError(err);
      }
    }
    const certificate: IdentityTestReport['certificate'] = {
      source: hasUpload ? 'upload' : 'identity',
      ok: false,
    };
    let client: { certificatesPem: string; keyPem: string } | undefined;
    if (hasUpload && input.upload) {
      try {
        const validated = await this.#deps.parser.parse(tenantId, input.upload, this.#deps.clock.now());
        certificate.ok = true;
        certificate.summary = summaryView(validated.summary, validated.chainSummary);
        client = {
          certificatesPem: validated.certificatesPem,
          keyPem: validated.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        };
      } catch (err) {
        if (!isCertificateError(err)) throw toAppError(err);
        certificate.error = { code: err.code, detail: err.message };
      }
    } else if (input.identityId !== undefined) {
      const runtime = await this.#deps.identities.getRuntimeIdentity(tenantId, input.identityId);
      if (!runtime) throw new AppError('not_found', 'No such identity.');
      certificate.identityId = input.identityId;
      certificate.version = runtime.active.version;
      certificate.summary = summaryView(runtime.active.summary, runtime.active.chain);
      // What a forward would not present, the tester does not present either: the remote server
      // is probed without a client certificate and the report says why.
      const refusal = presentationRefusal(
        runtime.identity.disabled,
        runtime.active.summary,
        this.#deps.clock.now().getTime(),
      );
      if (refusal !== undefined) {
        certificate.error = refusal;
      } else {
        certificate.ok = true;
        const der = await this.#deps.identities.openPrivateKey(runtime.active);
        try {
          client = {
            certificatesPem: runtime.active.certificatesPem,
            keyPem: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
              .export({ type: 'pkcs8', format: 'pem' })
              .toString(),
          };
        } finally {
          der.fill(0);
        }
      }
    }

    const timeoutMs = Math.min(input.timeoutMs ?? this.#deps.timeoutMs, this.#deps.timeoutMs);
    const result = await probe({
      url,
      allowPrivate: this.#deps.allowPrivate,
      ...(client ? { client } : {}),
      ...(input.trustAnchorsPem ? { trustAnchorsPem: input.trustAnchorsPem } : {}),
      timeoutMs,
      maxBodyBytes: MAX_BODY_BYTES,
    });
    if (result.blocked || result.error?.code === DESTINATION_BLOCKED) {
      throw new AppError('forward_destination_blocked', 'The URL resolves to a blocked address.');
    }
    return report(url, certificate, client !== undefined, result);
  }
}

/** The report's view of the certificate under test: public facts, instants as RFC 3339. */
function summaryView(
  s: CertificateSummary,
  chain: readonly ChainEntry[],
): NonNullable<IdentityTestReport['certificate']['summary']> {
  return {
    subject: s.subject,
    issuer: s.issuer,
    serialNumber: s.serialNumber,
    fingerprintSha256: s.fingerprintSha256,
    notBefore: s.notBefore.toISOString(),
    notAfter: s.notAfter.toISOString(),
    keyType: s.keyType,
    ...(s.keySize !== undefined ? { keySize: s.keySize } : {}),
    ...(s.curve !== undefined ? { curve: s.curve } : {}),
    subjectAltNames: s.subjectAltNames,
    chain: chain.map((c) => ({ ...c, notAfter: c.notAfter.toISOString() })),
  };
}

function report(
  url: URL,
  certificate: IdentityTestReport['certificate'],
  hasClient: boolean,
  r: ProbeResult,
): IdentityTestReport {
  const requested = r.handshake.certificateRequested;
  const code = r.error?.code;
  const untrusted = code !== undefined && CERTIFICATE_CODES.has(code);
  const verdict = verdictOf(r, hasClient, untrusted);
  return {
    url: url.toString(),
    verdict,
    message: messageOf(verdict, r),
    certificate,
    connection: {
      addresses: r.addresses,
      ...(r.protocol ? { protocol: r.protocol } : {}),
      ...(r.cipher ? { cipher: r.cipher } : {}),
    },
    handshake: {
      completed: r.handshakeCompleted,
      certificateRequested: requested ?? null,
      acceptableCaNames:
        requested === true ? r.handshake.acceptableCaNames.map(formatDistinguishedName) : null,
      clientCertificateSent: requested === true && hasClient,
      ...(r.error && !r.http ? { error: r.error } : {}),
    },
    server: {
      chain: r.serverChain.map(chainSummary),
      trusted: r.handshakeCompleted ? r.serverTrusted : untrusted ? false : null,
      ...(untrusted && r.error ? { trustError: r.error.code } : {}),
    },
    http: r.http
      ? {
          status: r.http.status,
          headers: r.http.headers,
          body: r.http.body.toString('utf8'),
          truncated: r.http.truncated,
        }
      : null,
    timingsMs: r.timingsMs,
  };
}

function verdictOf(r: ProbeResult, hasClient: boolean, untrusted: boolean): TestVerdict {
  if (!hasClient) return 'certificate_invalid';
  if (r.timedOut) return 'timeout';
  const code = r.error?.code ?? '';
  const requested = r.handshake.certificateRequested;
  if (!r.handshakeCompleted) {
    if (untrusted) return 'server_untrusted';
    if (code === 'ETIMEDOUT') return 'timeout';
    if (r.phase === 'dns' || r.phase === 'tcp' || UNREACHABLE_CODES.has(code)) return 'unreachable';
    // Refused during the handshake after the server asked for our certificate: TLS 1.2 servers
    // check it before their Finished, so the alert (or a reset) comes here.
    if (requested === true) return 'server_rejected_certificate';
    if (r.handshake.version === undefined && /ECONNRESET|EPIPE/.test(code)) return 'unreachable';
    return 'handshake_failed';
  }
  if (requested === false) return 'server_did_not_request_certificate';
  if (!r.http) {
    // TLS 1.3 servers check the client certificate after the client's Finished, so the client sees
    // the handshake complete and the refusal (alert or reset) on its first read.
    return requested === true ? 'server_rejected_certificate' : 'handshake_failed';
  }
  if (r.http.status === 400 && NGINX_CERT_PAGES.test(r.http.body.toString('utf8'))) {
    return 'server_rejected_certificate';
  }
  return 'ok';
}

function messageOf(verdict: TestVerdict, r: ProbeResult): string {
  switch (verdict) {
    case 'ok':
      return `The server asked for a client certificate, accepted it and answered HTTP ${r.http?.status}.`;
    case 'server_did_not_request_certificate':
      return 'TLS worked, but the server did not ask for a client certificate, so none was sent.';
    case 'server_rejected_certificate':
      return 'The server asked for a client certificate and refused the one presented.';
    case 'server_untrusted':
      return `The server's certificate is not trusted (${r.error?.code}); no request was sent to it.`;
    case 'unreachable':
      return `The server could not be reached (${r.error?.code ?? 'connection closed'}).`;
    case 'timeout':
      return `No complete answer within the timeout (stopped during ${r.phase === 'done' ? 'http' : r.phase}).`;
    case 'handshake_failed':
      return `The TLS handshake failed (${r.error?.code ?? 'connection closed'}).`;
    case 'certificate_invalid':
      return 'The certificate could not be used (see certificate.error); the server was probed without one.';
  }
}

/** A DER DistinguishedName from a CertificateRequest as an RFC 4514 string. */
function formatDistinguishedName(der: Buffer): string {
  try {
    return formatName(AsnConvert.parse(der, Name));
  } catch {
    return `#${der.toString('hex')}`;
  }
}

function chainSummary(cert: X509Certificate): IdentityTestReport['server']['chain'][number] {
  try {
    const entry = chainEntry(cert);
    return {
      subject: entry.subject,
      issuer: entry.issuer,
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: entry.notAfter.toISOString(),
      fingerprintSha256: entry.fingerprintSha256,
    };
  } catch {
    return {
      subject: cert.subject.replaceAll('\n', ','),
      issuer: cert.issuer.replaceAll('\n', ','),
      notBefore: new Date(cert.validFrom).toISOString(),
      notAfter: new Date(cert.validTo).toISOString(),
      fingerprintSha256: fingerprintSha256(cert),
    };
  }
}
