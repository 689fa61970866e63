/**
 * Key custody across domains for `twoway kms rotate`: which associated data each kind of sealed row
 * was sealed with (each domain owns its rule), and the rotation itself over opened backends.
 */
import { X509Certificate } from 'node:crypto';
import { caKeyAad } from './ca/platform-ca.js';
import { fingerprintSha256 } from './certificates/index.js';
import { connectionSecretAad } from './connections/service.js';
import { identityKeyAad, makeKekCheck } from './kms/envelope.js';
import { type RewrapProgress, rewrapAll } from './kms/rotation.js';
import { webhookSecretAad } from './lifecycle/settings.js';
import { type Backends, KEK_CHECK } from './main.js';
import type { SealedKeyRef } from './store/index.js';

/**
 * The associated data a sealed row's secret was sealed with, by its owner's rule: identity keys
 * (kms/envelope.ts), CA keys of both CAs (ca/platform-ca.ts), webhook secrets (lifecycle/settings.ts),
 * connection secrets (connections/service.ts).
 */
export function sealedKeyAad(ref: SealedKeyRef): Buffer {
  switch (ref.kind) {
    case 'identity_key':
      return identityKeyAad(ref.tenantId, ref.identityId, ref.version);
    case 'ca_key':
    case 'outbound_ca_key':
      return caKeyAad(ref.role, fingerprintSha256(new X509Certificate(ref.certificatePem)));
    case 'webhook_secret':
      return webhookSecretAad(ref.tenantId);
    case 'connection_secret':
      return connectionSecretAad(ref.tenantId, ref.connectionId, ref.secretVersion);
  }
}

/**
 * `twoway kms rotate`: moves every sealed row to the configured KEK ({@link rewrapAll}), then
 * writes the KEK check value under it, so that a start without the old KEK is accepted.
 */
export async function rotateKek(
  backends: Backends,
  options: { batchSize?: number; onProgress?: (progress: RewrapProgress) => void } = {},
): Promise<{ moved: number; counts: Record<string, number> }> {
  const { moved } = await rewrapAll({
    store: backends.store,
    kms: backends.kms,
    aadOf: sealedKeyAad,
    ...options,
  });
  await backends.store.setMeta(KEK_CHECK, await makeKekCheck(backends.kms));
  return { moved, counts: await backends.store.countSealedKeys() };
}
