import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { rotateKek, sealedKeyAad } from '../../src/key-custody.js';
import { open } from '../../src/kms/envelope.js';
import { openBackends } from '../../src/main.js';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { expectCustody, seedCustody, twowayCli } from '../helpers/custody.js';

import { hsmFixture } from '../helpers/softhsm.js';
import { startTestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();
const fx = hsmFixture();

describe.each(backends)('KEK rotation on $name', (backend) => {
  test('local → pkcs11 while serving, then a new key version resumed after a crash; every row opens', async () => {
    const { dir, cleanup } = tempDir('twoway-rotate-');
    const local: Record<string, string> = { ...(await backend.env()), TWOWAY_DATA_DIR: dir };
    const first = await startTestTwoway(local);
    const custody = await seedCustody(first, fx.pki, fx.upstream, dir);
    await first.close();

    // Servers move to the token first (the local key still opens old rows), then the rows move.
    const label = `kek-${backend.name}`;
    const hsm = { ...local, ...fx.token.env, TWOWAY_PKCS11_KEY_LABEL: label };
    const serving = await startTestTwoway(hsm);
    await expectCustody(serving, fx.upstream, custody);
    const storeArgs = [
      '--data-dir',
      dir,
      ...(local.TWOWAY_DATABASE_URL ? ['--database-url', local.TWOWAY_DATABASE_URL] : []),
    ];
    const rotated = await twowayCli(['kms', 'rotate', '--batch-size', '2', ...storeArgs], {
      ...fx.token.env,
      TWOWAY_PKCS11_KEY_LABEL: label,
    });
    expect(rotated.stderr).toMatch(/rows moved to pkcs11:token=twoway;object=/);
    const kekId = `pkcs11:token=twoway;object=${label}`;
    const summary = rotated.json as { moved: number; rowsByKek: Record<string, number> };
    expect(summary.moved).toBeGreaterThanOrEqual(4);
    expect(Object.keys(summary.rowsByKek)).toEqual([kekId]);
    // The running server did not notice.
    await expectCustody(serving, fx.upstream, custody);
    await serving.close();

    // The local key is no longer needed.
    rmSync(join(dir, 'master.key'));
    const tokenOnly = await startTestTwoway(hsm);
    await expectCustody(tokenOnly, fx.upstream, custody);
    await tokenOnly.close();

    // A new key version; the first run dies after its first batch and a second run finishes.
    const next = await openBackends(loadConfig({ ...hsm, TWOWAY_PKCS11_KEY_LABEL: `${label}-2` }));
    try {
      await expect(
        rotateKek(next, {
          batchSize: 1,
          onProgress: () => {
            throw new Error('crash');
          },
        }),
      ).rejects.toThrow('crash');
      const halfway = await next.store.countSealedKeys();
      expect(halfway[next.kms.kekId]).toBe(1);
      const resumed = await rotateKek(next, { batchSize: 3 });
      expect(resumed.moved).toBe(summary.moved - 1);
      expect(Object.keys(resumed.counts)).toEqual([next.kms.kekId]);
      for (const { ref, secret } of await next.store.listSealedKeys({ limit: 1000 })) {
        (await open(next.kms, secret, sealedKeyAad(ref))).fill(0);
      }
    } finally {
      await next.store.close();
      await next.kms.close();
    }
    const version2 = await startTestTwoway({ ...hsm, TWOWAY_PKCS11_KEY_LABEL: `${label}-2` });
    await expectCustody(version2, fx.upstream, custody);
    await version2.close();
    cleanup();
  }, 300_000);
});
