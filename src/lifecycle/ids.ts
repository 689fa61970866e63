import { randomBytes } from 'node:crypto';

/**
 * A new random id for lifecycle rows, same shape as shared/ids.ts `newId` (80 random bits):
 * `evt_` notification (the webhook event id), `dlv_` delivery, `aud_` audit event.
 */
export function lifecycleId(prefix: 'evt' | 'dlv' | 'aud'): string {
  return `${prefix}_${randomBytes(10).toString('base64url').replace(/[-_]/g, 'x').toLowerCase()}`;
}
