/**
 * The worker-thread side of {@link IdentityParser} (identity-parser.ts): reads and validates one
 * identity upload off the event loop. Key derivation for a PKCS#12 file or an encrypted key can take
 * seconds within the allowed budget (pbe.ts); run on the main thread, it would stall every tenant's
 * forwards and every edge request for that long.
 */
import { isCertificateError } from './errors.js';
import { type IdentityUpload, readIdentity } from './identity.js';
import type { ParsedIdentity } from './identity-parser.js';

/** What the main thread sends: the upload and the instant to check validity against (ms). */
export interface ParseTask {
  upload: IdentityUpload;
  nowMs: number;
}

/**
 * The answer: the identity, or the CertificateError's code and message (an Error's own properties
 * do not survive the trip between threads).
 */
export type ParseAnswer = { identity: ParsedIdentity } | { refused: { code: string; message: string } };

/** Buffers arrive as plain Uint8Arrays (structured clone): view them as Buffers again, no copy. */
function asBuffer(bytes: Uint8Array | undefined): Buffer | undefined {
  return bytes === undefined ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export default function parse(task: ParseTask): ParseAnswer {
  const { file, certificate, privateKey, chain, password } = task.upload;
  const upload: IdentityUpload = {};
  for (const [name, bytes] of [
    ['file', file],
    ['certificate', certificate],
    ['privateKey', privateKey],
    ['chain', chain],
  ] as const) {
    const buffer = asBuffer(bytes);
    if (buffer !== undefined) upload[name] = buffer;
  }
  if (password !== undefined) upload.password = password;
  try {
    const validated = readIdentity(upload, { now: new Date(task.nowMs) });
    return {
      identity: {
        privateKey: validated.privateKey,
        summary: validated.summary,
        chainSummary: validated.chainSummary,
        certificatesPem: validated.certificatesPem,
      },
    };
  } catch (err) {
    if (isCertificateError(err)) return { refused: { code: err.code, message: err.message } };
    throw err;
  }
}
