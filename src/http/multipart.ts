/**
 * Reading a multipart/form-data upload into memory within one limit for the whole request. The
 * plugin's own limits (app.ts) are per part: four 1 MiB files plus fifteen 1 MiB fields passed them
 * all and reached the parser as 19.9 MB.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';

/** Room for multipart framing (boundaries, part headers) on top of the parts themselves, in bytes. */
export const MULTIPART_FRAMING_BYTES = 64 * 1024;

/** One part of the form: a file or a text field, its bytes in memory. */
export interface FormPart {
  fieldname: string;
  isFile: boolean;
  value: Buffer;
}

function tooLarge(maxBytes: number): AppError {
  return new AppError('payload_too_large', `Uploads are limited to ${maxBytes} bytes in all.`);
}

/**
 * Reads every part of a multipart/form-data request, in order. The parts together may hold at most
 * `maxBytes` (TWOWAY_MAX_UPLOAD_BYTES): a declared Content-Length above that plus
 * {@link MULTIPART_FRAMING_BYTES} is refused before anything is read, and reading stops at the part
 * that passes it (a chunked body has no length to check first). Nothing is written anywhere; on a
 * refusal the parts read so far are zeroed.
 *
 * @throws AppError `payload_too_large`; the plugin's own errors (part count and size limits, which
 *   the error handler also answers 413, and a malformed body).
 */
export async function readFormParts(request: FastifyRequest, maxBytes: number): Promise<FormPart[]> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes + MULTIPART_FRAMING_BYTES) throw tooLarge(maxBytes);
  const parts: FormPart[] = [];
  let total = 0;
  try {
    for await (const part of request.parts()) {
      const isFile = part.type === 'file';
      const value = isFile ? await part.toBuffer() : Buffer.from(String(part.value), 'utf8');
      parts.push({ fieldname: part.fieldname, isFile, value });
      total += value.length;
      if (total > maxBytes) throw tooLarge(maxBytes);
    }
  } catch (err) {
    for (const part of parts) part.value.fill(0);
    throw err;
  }
  return parts;
}
