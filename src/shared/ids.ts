import { createHash, randomBytes } from 'node:crypto';

/** A new random object id with a type prefix, e.g. `idn_3kq8...` (80 random bits, base32-like). */
export function newId(prefix: 'idn' | 'map' | 'key' | 'ccr'): string {
  return `${prefix}_${randomBytes(10).toString('base64url').replace(/[-_]/g, 'x').toLowerCase()}`;
}

/** SHA-256 of a UTF-8 string, lowercase hex. */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}
