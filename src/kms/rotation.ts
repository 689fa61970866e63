import type { SealedKeyChange, SealedKeyRef, SealedKeyStore } from '../store/index.js';
import type { Kms } from './types.js';

/** Progress of {@link rewrapAll}, reported after each batch. */
export interface RewrapProgress {
  /** Rows moved to the target KEK so far, by this run. */
  moved: number;
  /** Rows left under another KEK when the batch was read (an estimate while servers write). */
  remaining: number;
  /** The target KEK (`pkcs11:token=twoway;object=twoway-kek-2`). */
  kekId: string;
}

/** What {@link rewrapAll} needs. */
export interface RewrapDeps {
  store: Pick<SealedKeyStore, 'listSealedKeys' | 'rewrapSealedKeys' | 'countSealedKeys'>;
  /** Wraps with the target KEK (its `kekId`); unwraps with the old ones too (a KeyRing). */
  kms: Kms;
  /** The associated data the row's secret was sealed with (see kms/envelope.ts and its owners). */
  aadOf(ref: SealedKeyRef): Buffer;
  /** Rows per transaction (default 200). */
  batchSize?: number;
  onProgress?(progress: RewrapProgress): void;
}

/**
 * KEK rotation and backend migration: re-wraps the DEK of every sealed row not yet under
 * `kms.kekId` (another KEK version, or another backend) and records the new `kekId` on the row. The
 * ciphertexts stay; only the wrapped DEK changes, so a running server keeps opening every row (its
 * KMS ring knows both KEKs) and nothing it caches changes.
 *
 * Batches of `batchSize` rows are re-wrapped in memory and written in one transaction, each row only
 * if it still holds the DEK that was read (so a crash, a second run at the same time, or a server
 * writing a new secret meanwhile, never loses a row): a run after a crash just carries on with the
 * rows still under an old KEK. It ends when no row is left, which is when the old KEK may go.
 * @returns the rows moved by this run
 * @throws KmsError `unknown_kek` when a row's KEK is not in the ring, `unwrap_failed` when a row does
 *   not open (rows of earlier batches stay moved)
 */
export async function rewrapAll(deps: RewrapDeps): Promise<{ moved: number }> {
  const { store, kms } = deps;
  const batchSize = deps.batchSize ?? 200;
  let moved = 0;
  let remaining = total(await store.countSealedKeys(), kms.kekId);
  for (;;) {
    const rows = await store.listSealedKeys({ limit: batchSize, excludingKekId: kms.kekId });
    if (rows.length === 0) break;
    const changes: SealedKeyChange[] = [];
    for (const { ref, secret } of rows) {
      const aad = deps.aadOf(ref);
      const dek = await kms.unwrapKey({ kekId: secret.kekId, wrapped: secret.wrappedDek, aad });
      try {
        const to = await kms.wrapKey({ plaintext: dek, aad });
        changes.push({ ref, from: { kekId: secret.kekId, wrapped: secret.wrappedDek }, to });
      } finally {
        dek.fill(0);
      }
    }
    const applied = await store.rewrapSealedKeys(changes);
    moved += applied;
    remaining = Math.max(0, remaining - applied);
    deps.onProgress?.({ moved, remaining, kekId: kms.kekId });
  }
  return { moved };
}

/** Rows under any KEK but `kekId`. */
function total(counts: Record<string, number>, kekId: string): number {
  return Object.entries(counts).reduce((sum, [id, n]) => (id === kekId ? sum : sum + n), 0);
}
