import { createHash, randomBytes } from 'node:crypto';

/**
 * A new random object id with a type prefix, e.g. `idn_3kq8...`: 14 characters from 80 random bits
 * (base64url, then lower-cased with `-`/`_` as `x`, which leaves about 68 bits). Ids name objects;
 * they are not secrets. Prefixes: `idn` identity, `map` mapping, `key` API key, `ccr` client
 * certificate, `evt` notification (the webhook event id), `dlv` delivery, `aud` audit event, `con`
 * connection.
 */
export function newId(prefix: 'idn' | 'map' | 'key' | 'ccr' | 'csr' | 'evt' | 'dlv' | 'aud' | 'con'): string {
  return `${prefix}_${randomBytes(10).toString('base64url').replace(/[-_]/g, 'x').toLowerCase()}`;
}

/** SHA-256 of a string (as UTF-8) or of bytes, lowercase hex. */
export function sha256Hex(value: string | Buffer): string {
  return createHash('sha256').update(value).digest('hex');
}
