/**
 * Webhook signatures. Every notification webhook is a `POST` with a JSON body and three headers:
 *
 * - `Twoway-Event-Id: evt_...`: the notification's id, the same on every retry (receivers dedupe on it);
 * - `Twoway-Timestamp: <unix seconds>`: when this attempt was signed;
 * - `Twoway-Signature: v1=<hex>`: HMAC-SHA256, keyed with the tenant's webhook signing secret
 *   (the whole `whsec_...` string as UTF-8 bytes), over `<timestamp>.<raw body bytes>`.
 *
 * A receiver recomputes the HMAC over the timestamp header, a `.` and the body exactly as received,
 * compares in constant time, and refuses timestamps more than 5 minutes away from its clock
 * (replay). Signing the timestamp binds it, so an old body cannot be re-sent with a fresh one.
 * `v1=` leaves room for a second scheme (a receiver accepts any listed `v1=` value, comma-separated,
 * which is how a secret rotation can overlap in a later version).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const EVENT_ID_HEADER = 'twoway-event-id';
export const TIMESTAMP_HEADER = 'twoway-timestamp';
export const SIGNATURE_HEADER = 'twoway-signature';

/** How far a receiver should let the timestamp differ from its clock, in seconds. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** A new webhook signing secret: `whsec_` + 32 random bytes, base64url. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. */
export function signWebhook(secret: string, timestampSeconds: number, body: string | Buffer): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${timestampSeconds}.`)
    .update(body)
    .digest('hex');
  return `v1=${mac}`;
}

/**
 * Checks a received webhook, as a receiver would: true when one `v1=` signature in
 * `signatureHeader` matches and the timestamp is within `toleranceSeconds` of `now`.
 */
export function verifyWebhook(
  secret: string,
  timestampHeader: string | undefined,
  signatureHeader: string | undefined,
  body: string | Buffer,
  now: Date,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  if (!timestampHeader || !signatureHeader || !/^\d{1,12}$/.test(timestampHeader)) return false;
  const timestamp = Number(timestampHeader);
  if (Math.abs(now.getTime() / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, body), 'utf8');
  return signatureHeader
    .split(',')
    .map((part) => Buffer.from(part.trim(), 'utf8'))
    .some((given) => given.length === expected.length && timingSafeEqual(given, expected));
}
