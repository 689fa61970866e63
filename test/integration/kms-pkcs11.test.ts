import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Pkcs11Kms, parsePkcs11KeyUri } from '../../src/kms/pkcs11/pkcs11-kms.js';
import { KmsError } from '../../src/kms/types.js';
import { openBackends, StartupError } from '../../src/main.js';
import { openStore } from '../../src/store/index.js';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { expectCustody, seedCustody } from '../helpers/custody.js';

import { hsmFixture, SOFTHSM_MODULE } from '../helpers/softhsm.js';
import { startTestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();
const fx = hsmFixture();

function openToken(keyLabel = 'unit-kek', pin = fx.token.pin): Pkcs11Kms {
  return Pkcs11Kms.open({ modulePath: SOFTHSM_MODULE, tokenLabel: 'twoway', pin, keyLabel });
}

describe('the PKCS#11 KMS on SoftHSM2', () => {
  test('wraps in the token with the AAD bound; a wrong AAD, an unknown key or a wrong PIN are refused', async () => {
    const kms = openToken();
    try {
      expect(kms.kekId).toBe('pkcs11:token=twoway;object=unit-kek');
      expect(parsePkcs11KeyUri(kms.kekId)).toEqual({ tokenLabel: 'twoway', keyLabel: 'unit-kek' });
      const dek = randomBytes(32);
      const aad = Buffer.from('row-1');
      const wrapped = await kms.wrapKey({ plaintext: dek, aad });
      expect(wrapped.wrapped.length).toBe(12 + 32 + 16);
      expect(await kms.unwrapKey({ ...wrapped, aad })).toEqual(dek);
      await expect(kms.unwrapKey({ ...wrapped, aad: Buffer.from('row-2') })).rejects.toMatchObject({
        reason: 'unwrap_failed',
      });
      await expect(
        kms.unwrapKey({ ...wrapped, kekId: 'pkcs11:token=twoway;object=absent', aad }),
      ).rejects.toMatchObject({ reason: 'unknown_kek' });
      await expect(kms.unwrapKey({ ...wrapped, kekId: 'local:kek-1', aad })).rejects.toMatchObject({
        reason: 'unknown_kek',
      });
    } finally {
      await kms.close();
    }
    let refused: unknown;
    try {
      openToken('unit-kek', 'wrong-pin-0000');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(KmsError);
    expect((refused as KmsError).message).toMatch(/CKR_PIN_INCORRECT/);
    expect((refused as KmsError).message).not.toContain('wrong-pin-0000');
  });

  test('the generated KEK is an AES-256 token key that is sensitive and never extractable', () => {
    openToken('attribute-kek').close();
    const module = new pkcs11js.PKCS11();
    module.load(SOFTHSM_MODULE);
    module.C_Initialize();
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === 'twoway');
      if (slot === undefined) throw new Error('no token');
      const session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      module.C_Login(session, pkcs11js.CKU_USER, fx.token.pin);
      module.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: 'attribute-kek' }]);
      const key = module.C_FindObjects(session);
      module.C_FindObjectsFinal(session);
      if (key === null) throw new Error('no key');
      const [sensitive, extractable, length, onToken] = module.C_GetAttributeValue(session, key, [
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_VALUE_LEN },
        { type: pkcs11js.CKA_TOKEN },
      ]);
      expect(sensitive?.value).toEqual(Buffer.from([1]));
      expect(extractable?.value).toEqual(Buffer.from([0]));
      expect((length?.value as Buffer | undefined)?.readBigUInt64LE()).toBe(32n);
      expect(onToken?.value).toEqual(Buffer.from([1]));
      // The value itself cannot be read.
      expect(() => module.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])).toThrow(
        /CKR_ATTRIBUTE_SENSITIVE/,
      );
    } finally {
      module.C_Finalize();
      module.close();
    }
  });
});

describe.each(backends)('TWOWAY_KMS=pkcs11 on $name', (backend) => {
  test('uploads, forwards, CSR signing and a restart work; nothing in the store opens without the token', async () => {
    const { dir, cleanup } = tempDir('twoway-pkcs11-');
    const env: Record<string, string> = {
      ...(await backend.env()),
      ...fx.token.env,
      TWOWAY_DATA_DIR: dir,
      TWOWAY_PKCS11_KEY_LABEL: `kek-${backend.name}`,
    };
    const first = await startTestTwoway(env);
    const custody = await seedCustody(first, fx.pki, fx.upstream, dir);
    await expectCustody(first, fx.upstream, custody);
    await first.close();
    // No local key was made: the token's KEK is the only one.
    expect(existsSync(join(dir, 'master.key'))).toBe(false);

    const store = await openStore(env.TWOWAY_DATABASE_URL, dir);
    const rows = await store.listSealedKeys({ limit: 100 });
    await store.close();
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const row of rows) expect(row.secret.kekId).toBe(`pkcs11:token=twoway;object=kek-${backend.name}`);

    const again = await startTestTwoway(env);
    await expectCustody(again, fx.upstream, custody);
    await again.close();

    // Without the token the database does not open, with any local key.
    const local = { ...env, TWOWAY_KMS: 'local', TWOWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    await expect(openBackends(loadConfig(local))).rejects.toThrow(StartupError);
    cleanup();
  }, 120_000);
});
