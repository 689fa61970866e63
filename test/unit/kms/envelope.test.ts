import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { identityKeyAad, makeKekCheck, open, seal, verifyKekCheck } from '../../../src/kms/envelope.js';
import { LocalKms, loadLocalKek } from '../../../src/kms/local/local-kms.js';
import { tempDir } from '../../fixtures/pki.js';

describe('envelope encryption', () => {
  const kms = new LocalKms(randomBytes(32));
  const secret = Buffer.from('a PKCS#8 private key, pretend');

  test('seal then open round-trips, and the ciphertext does not hold the plaintext', async () => {
    const aad = identityKeyAad('t1', 'idn_1', 1);
    const sealed = await seal(kms, secret, aad);
    expect(sealed.ciphertext.includes(secret)).toBe(false);
    expect(sealed.wrappedDek.length).toBe(12 + 32 + 16);
    expect((await open(kms, sealed, aad)).equals(secret)).toBe(true);
  });

  test('a sealed secret does not open for another tenant, identity or version', async () => {
    const sealed = await seal(kms, secret, identityKeyAad('t1', 'idn_1', 1));
    for (const aad of [
      identityKeyAad('t2', 'idn_1', 1),
      identityKeyAad('t1', 'idn_2', 1),
      identityKeyAad('t1', 'idn_1', 2),
    ]) {
      await expect(open(kms, sealed, aad)).rejects.toMatchObject({ reason: 'unwrap_failed' });
    }
  });

  test('a flipped ciphertext bit or another KEK fails', async () => {
    const aad = identityKeyAad('t1', 'idn_1', 1);
    const sealed = await seal(kms, secret, aad);
    const tampered = { ...sealed, ciphertext: Buffer.from(sealed.ciphertext) };
    tampered.ciphertext[0] = (tampered.ciphertext[0] ?? 0) ^ 1;
    await expect(open(kms, tampered, aad)).rejects.toMatchObject({ reason: 'unwrap_failed' });
    await expect(open(new LocalKms(randomBytes(32)), sealed, aad)).rejects.toMatchObject({
      reason: 'unwrap_failed',
    });
  });

  test('the KEK check value tells the right KEK from a wrong one', async () => {
    const check = await makeKekCheck(kms);
    expect(await verifyKekCheck(kms, check)).toBe(true);
    expect(await verifyKekCheck(new LocalKms(randomBytes(32)), check)).toBe(false);
    expect(await verifyKekCheck(kms, Buffer.from('garbage'))).toBe(false);
  });
});

describe('local KEK', () => {
  test('created once with mode 0600, then read back; not created when forbidden', () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'sub', 'master.key');
    expect(loadLocalKek(undefined, file, false)).toBeUndefined();
    expect(existsSync(file)).toBe(false);
    const created = loadLocalKek(undefined, file, true);
    expect(created?.source).toBe('created');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = loadLocalKek(undefined, file, true);
    expect(again?.source).toBe('file');
    expect(again?.kek.equals(Buffer.from(readFileSync(file, 'utf8').trim(), 'base64'))).toBe(true);
    const env = loadLocalKek(randomBytes(32).toString('base64'), file, true);
    expect(env?.source).toBe('env');
    cleanup();
  });
});
