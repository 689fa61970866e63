import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { type MtlsServer, startMtlsServer } from './mtls-server.js';

/** Debian's SoftHSM2 module (package softhsm2, installed by .ci/run). */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** A SoftHSM2 token in a folder of its own, and the TWOWAY_* settings that use it. */
export interface SoftHsmToken {
  env: Record<string, string>;
  pin: string;
  /** The token folder: every object SoftHSM2 stores is a file in it. */
  tokenDir: string;
  cleanup(): void;
}

/**
 * Makes a SoftHSM2 configuration and token folder in a temporary folder, points SOFTHSM2_CONF at
 * it (the module reads it when loaded; one token per test process) and initialises token `label`
 * with `softhsm2-util --init-token --free`. The PIN goes in through a 0600 PIN file.
 */
export function softHsmToken(label = 'twoway'): SoftHsmToken {
  if (!existsSync(SOFTHSM_MODULE)) throw new Error(`${SOFTHSM_MODULE} is missing: install softhsm2`);
  const { dir, cleanup } = tempDir('twoway-softhsm-');
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pin = '4711-user-pin';
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', '1234-so-pin', '--pin', pin],
    { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' },
  );
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  return {
    env: {
      TWOWAY_KMS: 'pkcs11',
      TWOWAY_PKCS11_MODULE: SOFTHSM_MODULE,
      TWOWAY_PKCS11_TOKEN_LABEL: label,
      TWOWAY_PKCS11_PIN_FILE: pinFile,
    },
    pin,
    tokenDir,
    cleanup,
  };
}

/** What {@link hsmFixture} starts for a test file. */
export interface HsmFixture {
  token: SoftHsmToken;
  pki: TestPki;
  upstream: MtlsServer;
}

/**
 * A SoftHSM2 token, a test PKI and an mTLS upstream for the whole file (beforeAll / afterAll); the
 * returned object is filled in before the first test runs.
 */
export function hsmFixture(): HsmFixture {
  const fixture = {} as HsmFixture;
  beforeAll(async () => {
    fixture.token = softHsmToken();
    fixture.pki = await makePki();
    fixture.upstream = await startMtlsServer(fixture.pki);
  });
  afterAll(async () => {
    await fixture.upstream?.close();
    fixture.token?.cleanup();
  });
  return fixture;
}
