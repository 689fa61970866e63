/**
 * PEM text (RFC 7468) and DER certificates (RFC 5280) in and out. The one home of PEM handling:
 * everything else in the project that needs PEM comes here.
 */
import { X509Certificate } from 'node:crypto';
import { CertificateError } from './errors.js';
import { subjectOfDer } from './names.js';

/**
 * One `-----BEGIN <label>-----` … `-----END <label>-----` block. `der` is the decoded body.
 * `headers` holds RFC 1421 encapsulated headers (`Proc-Type`, `DEK-Info`) when the block has them:
 * OpenSSL's traditional encrypted keys need them to decrypt.
 */
export interface PemBlock {
  label: string;
  der: Buffer;
  headers?: Record<string, string>;
}

/** PEM labels that hold an X.509 certificate. `X509 CERTIFICATE` is the pre-RFC 7468 spelling. */
export const CERTIFICATE_LABELS: ReadonlySet<string> = new Set([
  'CERTIFICATE',
  'X509 CERTIFICATE',
  'TRUSTED CERTIFICATE',
]);

// Lenient on purpose (RFC 7468 §2 asks parsers to be): text before, between and after blocks, CRLF,
// trailing spaces, byte-order marks. The END line must repeat the BEGIN label, so one broken block
// cannot swallow the next.
const BEGIN_LINE = /^-----BEGIN ([A-Z0-9][A-Z0-9 #._/-]*)-----[ \t]*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** U+FEFF, what a UTF-8 byte-order mark (EF BB BF) decodes to: Buffer#toString keeps it. */
const BOM = 0xfeff;

/**
 * Splits PEM text into blocks, in order, in one pass over its lines (linear in the text: a hostile
 * upload of a million BEGIN lines without END costs no more than reading it). Tolerates CRLF, text
 * around blocks (OpenSSL's `Bag Attributes` and `subject=` lines), `TRUSTED CERTIFICATE` and `X509
 * CERTIFICATE` labels, encapsulated headers, an END marker at the end of the last body line, and a
 * UTF-8 byte-order mark at the start of the text or of any line (Windows Notepad writes one at the
 * start of every file it saves, so files joined with `cat` carry one between blocks; OpenSSL skips
 * them, and left in place one would hide the BEGIN line after it). A block left open (no END line
 * with its label before the next BEGIN line or the end) is skipped. Returns `[]` when the text holds
 * no block.
 *
 * @throws CertificateError `unsupported_format` when a block's body is not base64 or is empty.
 */
export function parsePemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  let label: string | undefined;
  let end = '';
  let lines: string[] = [];
  for (const raw of text.split('\n')) {
    const unmarked = raw.charCodeAt(0) === BOM ? raw.slice(1) : raw;
    const line = unmarked.endsWith('\r') ? unmarked.slice(0, -1) : unmarked;
    const begin = line.startsWith('-----BEGIN ') ? BEGIN_LINE.exec(line) : null;
    if (begin) {
      label = begin[1] ?? '';
      end = `-----END ${label}-----`;
      lines = [];
      continue;
    }
    if (label === undefined) continue;
    const at = line.indexOf(end);
    if (at < 0) {
      lines.push(line);
      continue;
    }
    lines.push(line.slice(0, at));
    blocks.push(pemBlock(label, lines));
    label = undefined;
  }
  return blocks;
}

/** One block from its label and body lines (RFC 1421 headers first, then base64). */
function pemBlock(label: string, lines: string[]): PemBlock {
  const headers: Record<string, string> = {};
  let first = 0;
  // RFC 1421 headers ("Name: value") come first and end at an empty line.
  if (lines.length > 0 && /^[A-Za-z-]+:/.test(lines[0] ?? '')) {
    while (first < lines.length) {
      const line = lines[first] ?? '';
      first += 1;
      if (line.trim() === '') break;
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
  }
  const body = lines.slice(first).join('').replace(/\s+/g, '');
  // Buffer.from(…, 'base64') skips characters it does not know; check first so garbage is refused
  // rather than decoded into other garbage.
  if (body.length === 0 || !BASE64.test(body)) {
    throw new CertificateError('unsupported_format', `The PEM block "${label}" is not valid base64.`);
  }
  const block: PemBlock = { label, der: Buffer.from(body, 'base64') };
  if (Object.keys(headers).length > 0) block.headers = headers;
  return block;
}

/** Encodes DER as a PEM block with 64-character lines and a final newline (RFC 7468 §2). */
export function toPem(label: string, der: Buffer): string {
  const body = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** True when `input` looks like PEM text rather than binary DER/BER. */
export function isPem(input: Buffer): boolean {
  return input.includes('-----BEGIN ');
}

/**
 * Parses one certificate from a PEM block or a whole DER buffer. The certificate must fill the
 * buffer exactly: OpenSSL ignores bytes after the first certificate, which would silently drop a
 * second certificate concatenated in DER. `TRUSTED CERTIFICATE` blocks are the exception: OpenSSL
 * appends its trust settings (X509_AUX) after the certificate, and we keep only the certificate.
 */
export function certificateFromDer(der: Buffer, label = 'CERTIFICATE'): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (err) {
    throw new CertificateError('unsupported_format', 'A certificate could not be parsed as X.509.', {
      cause: err,
    });
  }
  // X509Certificate also accepts PEM; a DER input must decode to exactly itself.
  if (label !== 'TRUSTED CERTIFICATE' && !cert.raw.equals(der)) {
    throw new CertificateError('unsupported_format', 'A certificate has extra bytes after its DER encoding.');
  }
  return cert;
}

/**
 * Reads certificates from PEM (one or many `CERTIFICATE` blocks, other blocks ignored) or from a
 * single DER certificate (RFC 5280 §4.1).
 *
 * @throws CertificateError `unsupported_format` when nothing in `input` is a certificate or any
 *   certificate block fails to parse.
 */
export function readCertificates(input: Buffer): X509Certificate[] {
  if (isPem(input)) {
    const blocks = parsePemBlocks(input.toString('utf8')).filter((b) => CERTIFICATE_LABELS.has(b.label));
    if (blocks.length === 0) {
      throw new CertificateError('unsupported_format', 'The PEM text holds no CERTIFICATE block.');
    }
    return blocks.map((b) => certificateFromDer(b.der, b.label));
  }
  return [certificateFromDer(input)];
}

/** Largest trust anchors text, in bytes of UTF-8 PEM (a few private CAs take a few KiB). */
export const TRUST_ANCHORS_MAX_BYTES = 64 * 1024;
/** Most certificates in one trust anchors text. */
export const TRUST_ANCHORS_MAX_CERTIFICATES = 100;

/**
 * Reads trust anchors: one or more CA certificates in PEM, used to verify a remote server instead of
 * the system roots. Each must be a CA (basicConstraints cA, RFC 5280 §4.2.1.9); expiry is not checked
 * here because a stored anchor may expire later and the TLS handshake checks time anyway. Bounded:
 * at most {@link TRUST_ANCHORS_MAX_BYTES} of text and {@link TRUST_ANCHORS_MAX_CERTIFICATES}
 * certificates, because every stored copy is read back with its mapping and held in memory by the
 * forward's TLS contexts (the size is checked before anything is parsed).
 *
 * @throws CertificateError `trust_anchors_too_large` over either bound; `invalid_trust_anchors` when
 *   the text holds no certificate, a block does not parse, or a certificate is not a CA.
 */
export function readTrustAnchors(pem: string): X509Certificate[] {
  const input = Buffer.from(pem, 'utf8');
  if (input.length > TRUST_ANCHORS_MAX_BYTES) {
    throw new CertificateError(
      'trust_anchors_too_large',
      `Trust anchors are limited to ${TRUST_ANCHORS_MAX_BYTES / 1024} KiB of PEM (this is ${Math.ceil(input.length / 1024)} KiB): ` +
        "send only the CA certificates that issue the remote server's chain.",
    );
  }
  let certs: X509Certificate[];
  try {
    if (!isPem(input)) throw new Error('not PEM');
    certs = readCertificates(input);
  } catch (err) {
    throw new CertificateError('invalid_trust_anchors', 'Trust anchors must be CA certificates in PEM.', {
      cause: err,
    });
  }
  if (certs.length > TRUST_ANCHORS_MAX_CERTIFICATES) {
    throw new CertificateError(
      'trust_anchors_too_large',
      `Trust anchors are limited to ${TRUST_ANCHORS_MAX_CERTIFICATES} certificates (this holds ${certs.length}): ` +
        "send only the CA certificates that issue the remote server's chain.",
    );
  }
  for (const cert of certs) {
    if (!cert.ca) {
      throw new CertificateError(
        'invalid_trust_anchors',
        `The trust anchor "${subjectOfDer(cert.raw)}" is not a CA certificate.`,
      );
    }
  }
  return certs;
}
