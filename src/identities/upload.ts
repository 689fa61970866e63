import type { FastifyRequest } from 'fastify';
import type { IdentityUpload } from '../certificates/index.js';
import { AppError } from '../errors/app-error.js';
import { readFormParts } from '../http/multipart.js';

/** An identity upload as read from the request, before validation. */
export interface ParsedUpload {
  name?: string;
  activate?: boolean;
  /** `activateAt` as sent (RFC 3339); the route parses it. */
  activateAt?: string;
  upload: IdentityUpload;
  /** Extra text fields the route may need (e.g. `url`, `identityId` for tests). */
  fields: Record<string, string>;
}

/** JSON upload body (API.md "Identities"). */
export interface IdentityJsonBody {
  name?: string;
  pkcs12?: string;
  password?: string;
  certificatePem?: string;
  privateKeyPem?: string;
  chainPem?: string;
  activate?: boolean;
  activateAt?: string;
}

const FILE_PARTS = new Set(['file', 'certificate', 'privateKey', 'chain']);

/**
 * Reads an identity upload from `multipart/form-data` (parts `file`, or `certificate` +
 * `privateKey` + `chain`; fields `password`, `name`, `activate`) or from JSON
 * ({@link IdentityJsonBody}). The uploaded material is limited to `maxBytes` in all: for multipart,
 * every part counts (files and fields, see readFormParts); for JSON, the certificate, key, chain and
 * PKCS#12 properties. Larger gives `payload_too_large` (413), and nothing is written anywhere:
 * parts are read into memory only.
 * @throws AppError `payload_too_large`, `bad_request`, `unsupported_media_type`
 */
export async function readUpload(request: FastifyRequest, maxBytes: number): Promise<ParsedUpload> {
  if (request.isMultipart()) {
    const upload: IdentityUpload = {};
    const fields: Record<string, string> = {};
    const parts = await readFormParts(request, maxBytes);
    for (const part of parts) {
      if (FILE_PARTS.has(part.fieldname)) {
        // A file, or pasted PEM sent as a plain text field; sent twice, the last one counts.
        upload[part.fieldname as 'file']?.fill(0);
        upload[part.fieldname as 'file'] = part.value;
      } else if (part.isFile) {
        for (const other of parts) other.value.fill(0);
        throw new AppError('bad_request', `Unexpected file part "${part.fieldname}".`);
      } else {
        fields[part.fieldname] = part.value.toString('utf8');
        part.value.fill(0);
      }
    }
    if (fields.password !== undefined) upload.password = fields.password;
    // The JSON body is checked by its schema; multipart fields are not, so the same limit is here.
    if (fields.name !== undefined && (fields.name.length === 0 || fields.name.length > 200)) {
      zeroUpload(upload);
      throw new AppError('bad_request', 'name must be 1 to 200 characters.');
    }
    const parsed: ParsedUpload = { upload, fields };
    if (fields.name !== undefined) parsed.name = fields.name;
    if (fields.activate !== undefined) parsed.activate = fields.activate !== 'false';
    if (fields.activateAt !== undefined) parsed.activateAt = fields.activateAt;
    return parsed;
  }
  const body = request.body as IdentityJsonBody | undefined;
  if (!body || typeof body !== 'object') {
    throw new AppError('unsupported_media_type', 'Send multipart/form-data or a JSON object.');
  }
  const upload: IdentityUpload = {};
  if (typeof body.pkcs12 === 'string') {
    if (!/^[A-Za-z0-9+/=\s_-]*$/.test(body.pkcs12))
      throw new AppError('bad_request', 'pkcs12 must be base64.');
    upload.file = Buffer.from(body.pkcs12, 'base64');
  }
  if (typeof body.certificatePem === 'string') upload.certificate = Buffer.from(body.certificatePem, 'utf8');
  if (typeof body.privateKeyPem === 'string') upload.privateKey = Buffer.from(body.privateKeyPem, 'utf8');
  if (typeof body.chainPem === 'string') upload.chain = Buffer.from(body.chainPem, 'utf8');
  if (typeof body.password === 'string') upload.password = body.password;
  const total = [upload.file, upload.certificate, upload.privateKey, upload.chain].reduce(
    (n, b) => n + (b?.length ?? 0),
    0,
  );
  if (total > maxBytes) throw new AppError('payload_too_large', `Uploads are limited to ${maxBytes} bytes.`);
  const parsed: ParsedUpload = { upload, fields: {} };
  if (body.name !== undefined) parsed.name = body.name;
  if (body.activate !== undefined) parsed.activate = body.activate;
  if (typeof body.activateAt === 'string') parsed.activateAt = body.activateAt;
  return parsed;
}

/**
 * Zeroes the uploaded buffers (a PKCS#12 file or PEM key among them) once they have been read;
 * call it when the upload has been validated and sealed, or refused.
 */
export function zeroUpload(upload: IdentityUpload): void {
  for (const buffer of [upload.file, upload.certificate, upload.privateKey, upload.chain]) buffer?.fill(0);
}

/** Room for base64 (4/3) plus JSON around the largest allowed upload, in bytes. */
export function jsonUploadBodyLimit(maxBytes: number): number {
  return Math.ceil((maxBytes * 4) / 3) + 64 * 1024;
}
