/**
 * Reading a client certificate upload: public material only. A private key anywhere in the request
 * (a PEM key block, a DER key, a PKCS#12 file, a key or password field) is refused with
 * `private_key_not_accepted` before anything else happens; the bytes are zeroed and never stored,
 * logged or echoed (the error detail names no content).
 */
import type { X509Certificate } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { Pfx, parseAsn1 } from '../certificates/asn1.js';
import {
  isCertificateError,
  javaKeystoreType,
  parsePemBlocks,
  privateKeyFromDer,
} from '../certificates/index.js';
import { CERTIFICATE_LABELS, certificateFromDer } from '../certificates/pem.js';
import { AppError } from '../errors/app-error.js';
import { readFormParts } from '../http/multipart.js';

/** What a client certificate upload holds before validation. */
export interface ClientCertificateUpload {
  name?: string;
  /** The certificate: PEM text (first certificate is the one registered) or one DER certificate. */
  certificate: Buffer;
}

/** Fields whose mere presence means a private key or its password was sent. */
const SECRET_FIELDS = new Set([
  'privateKey',
  'privateKeyPem',
  'key',
  'keyPem',
  'password',
  'pkcs12',
  'pfx',
  'p12',
]);
const CERTIFICATE_FIELDS = new Set(['file', 'certificate', 'certificatePem']);

/** A PEM private key marker, in any of its labels (`PRIVATE KEY`, `RSA PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`). */
const PEM_KEY_MARKER = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

function privateKeyRefused(): AppError {
  return new AppError(
    'private_key_not_accepted',
    'Upload the public certificate only: the private key stays with you, and nothing of it was kept.',
  );
}

/** True when DER bytes are a private key (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1) or a PKCS#12 file. */
function isDerSecret(der: Buffer): boolean {
  try {
    privateKeyFromDer(der, undefined);
    return true;
  } catch (err) {
    if (isCertificateError(err, 'bad_password')) return true;
  }
  try {
    const pfx = parseAsn1(der, Pfx, 'The upload');
    return pfx.version === 3;
  } catch {
    return false;
  }
}

/**
 * The certificate in `input`: PEM (the first CERTIFICATE block; others, such as a chain, are
 * ignored) or a single DER certificate (RFC 5280).
 * @throws AppError `private_key_not_accepted` (a key or PKCS#12 file), `java_keystore` (a JKS or
 *   JCEKS file), `no_certificate` (PEM without a certificate), `unsupported_format` (anything else).
 */
export function readCertificateInput(input: Buffer): X509Certificate {
  const text = input.includes('-----BEGIN ') ? input.toString('utf8') : undefined;
  if (text !== undefined) {
    // Looked for in the raw text first, so that a key block the PEM parser would reject is refused
    // as a key, not as a format error.
    if (PEM_KEY_MARKER.test(text)) throw privateKeyRefused();
    let blocks: ReturnType<typeof parsePemBlocks>;
    try {
      blocks = parsePemBlocks(text);
    } catch {
      throw new AppError('unsupported_format', 'The PEM text is not valid.');
    }
    const first = blocks.find((b) => CERTIFICATE_LABELS.has(b.label));
    if (!first) throw new AppError('no_certificate', 'The PEM text holds no CERTIFICATE block.');
    try {
      return certificateFromDer(first.der, first.label);
    } catch {
      throw new AppError('unsupported_format', 'The certificate could not be parsed as X.509.');
    }
  }
  try {
    return certificateFromDer(input);
  } catch {
    const keystore = javaKeystoreType(input);
    if (keystore) {
      throw new AppError(
        'java_keystore',
        `This is a Java ${keystore} keystore. Upload the certificate alone: ` +
          'keytool -exportcert -rfc -alias <alias> -keystore in.jks.',
      );
    }
    if (isDerSecret(input)) throw privateKeyRefused();
    throw new AppError('unsupported_format', 'The upload is neither a PEM nor a DER certificate.');
  }
}

/**
 * Refuses a JSON body that carries a private key or its password: a key or password property, or a
 * PEM private key in any string property.
 * @throws AppError `private_key_not_accepted`
 */
export function refuseSecrets(body: unknown): void {
  if (!body || typeof body !== 'object') return;
  for (const [field, value] of Object.entries(body)) {
    if (SECRET_FIELDS.has(field) || (typeof value === 'string' && PEM_KEY_MARKER.test(value))) {
      throw privateKeyRefused();
    }
  }
}

/**
 * Reads `multipart/form-data` (`file` or `certificate` as a file or a pasted text field, plus
 * `name`) or JSON `{ name, certificatePem }`. Every part is read into memory only, all parts together
 * limited to `maxBytes` (readFormParts); a key or password field, or a private key in any text, is
 * refused.
 * @throws AppError `private_key_not_accepted`, `bad_request`, `payload_too_large`,
 *   `unsupported_media_type`
 */
export async function readClientCertificateUpload(
  request: FastifyRequest,
  maxBytes: number,
): Promise<ClientCertificateUpload> {
  let certificate: Buffer | undefined;
  let name: string | undefined;
  let secret = false;
  let problem: AppError | undefined;
  if (request.isMultipart()) {
    for (const part of await readFormParts(request, maxBytes)) {
      const { fieldname, value } = part;
      if (SECRET_FIELDS.has(fieldname) || PEM_KEY_MARKER.test(value.toString('latin1'))) {
        secret = true;
      } else if (CERTIFICATE_FIELDS.has(fieldname)) {
        if (certificate) problem ??= new AppError('bad_request', 'Send one certificate per request.');
        certificate?.fill(0);
        certificate = value;
        continue;
      } else if (fieldname === 'name' && !part.isFile) {
        name = value.toString('utf8');
      } else if (fieldname === 'chain') {
        // Intermediates are not needed: registration pins the leaf by its fingerprint.
      } else {
        problem ??= new AppError('bad_request', `Unexpected part "${fieldname}".`);
      }
      value.fill(0);
    }
  } else {
    const body = request.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new AppError('unsupported_media_type', 'Send multipart/form-data or a JSON object.');
    }
    refuseSecrets(body);
    if (typeof body.certificatePem === 'string') certificate = Buffer.from(body.certificatePem, 'utf8');
    if (typeof body.name === 'string') name = body.name;
  }
  if (secret) {
    certificate?.fill(0);
    throw privateKeyRefused();
  }
  if (problem) throw problem;
  if (!certificate || certificate.length === 0) {
    throw new AppError(
      'bad_request',
      'Send the certificate as `file` (multipart) or `certificatePem` (JSON).',
    );
  }
  if (certificate.length > maxBytes) {
    throw new AppError('payload_too_large', `Uploads are limited to ${maxBytes} bytes.`);
  }
  if (name !== undefined && (name.length === 0 || name.length > 200)) {
    throw new AppError('bad_request', 'name must be 1 to 200 characters.');
  }
  return name === undefined ? { certificate } : { certificate, name };
}
