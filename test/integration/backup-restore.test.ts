import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openBackends } from '../../src/main.js';
import { makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { expectCustody, seedCustody, twowayCli } from '../helpers/custody.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { startTestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();
let pki: TestPki;
let upstream: MtlsServer;

beforeAll(async () => {
  pki = await makePki();
  upstream = await startMtlsServer(pki);
});
afterAll(() => upstream?.close());

/** The global CLI options naming a store: always the data folder, and the database URL when set. */
function storeArgs(env: Record<string, string>): string[] {
  const args = ['--data-dir', env.TWOWAY_DATA_DIR ?? ''];
  if (env.TWOWAY_DATABASE_URL) args.push('--database-url', env.TWOWAY_DATABASE_URL);
  return args;
}

describe.each(backends)('backup and restore on $name', (backend) => {
  test('an online backup restores into an empty store: identities forward, client certificates admit, the CA signs', async () => {
    const { dir, cleanup } = tempDir('twoway-backup-');
    const source = { ...(await backend.env()), TWOWAY_DATA_DIR: join(dir, 'source') };
    const running = await startTestTwoway(source);
    const custody = await seedCustody(running, pki, upstream, dir);
    await expectCustody(running, upstream, custody);

    // Taken while the server runs.
    const file = join(dir, 'twoway.backup');
    const backup = await twowayCli(['backup', '--out', file, ...storeArgs(source)]);
    expect(backup.code).toBe(0);
    expect((backup.json as { rows: number }).rows).toBeGreaterThan(10);
    await running.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // The KEK is not in it, in any encoding.
    const keyBase64 = readFileSync(join(source.TWOWAY_DATA_DIR, 'master.key'), 'utf8').trim();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(keyBase64);
    expect(text).not.toContain(Buffer.from(keyBase64, 'base64').toString('hex'));
    expect(text).not.toMatch(/PRIVATE KEY/);

    const target = { ...(await backend.env()), TWOWAY_DATA_DIR: join(dir, 'target') };
    const restored = await twowayCli(['restore', '--from', file, ...storeArgs(target)]);
    expect(restored.code).toBe(0);
    expect((restored.json as { rows: number }).rows).toBe((backup.json as { rows: number }).rows);
    const again = await twowayCli(['restore', '--from', file, ...storeArgs(target)]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/store_not_empty/);

    // Without the KEK the restored store does not open; with it, everything works.
    await expect(openBackends(loadConfig(target))).rejects.toThrow(/no KEK was found/);
    mkdirSync(target.TWOWAY_DATA_DIR, { recursive: true });
    copyFileSync(join(source.TWOWAY_DATA_DIR, 'master.key'), join(target.TWOWAY_DATA_DIR, 'master.key'));
    const back = await startTestTwoway(target);
    await expectCustody(back, upstream, custody);
    await back.close();
    cleanup();
  }, 240_000);

  test('a truncated or foreign file is refused and leaves the store empty', async () => {
    const { dir, cleanup } = tempDir('twoway-backup-bad-');
    const source = { ...(await backend.env()), TWOWAY_DATA_DIR: join(dir, 'source') };
    const seeded = await twowayCli(['tenant', 'create', '--id', 'acme', ...storeArgs(source)]);
    expect(seeded.code).toBe(0);
    const file = join(dir, 'twoway.backup');
    expect((await twowayCli(['backup', '--out', file, ...storeArgs(source)])).code).toBe(0);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const truncated = join(dir, 'truncated.backup');
    writeFileSync(truncated, `${lines.slice(0, -1).join('\n')}\n`);
    const foreign = join(dir, 'foreign.backup');
    writeFileSync(foreign, '{"hello":"world"}\n');

    const target = { ...(await backend.env()), TWOWAY_DATA_DIR: join(dir, 'target') };
    for (const bad of [truncated, foreign]) {
      const refused = await twowayCli(['restore', '--from', bad, ...storeArgs(target)]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/backup_invalid/);
    }
    // Nothing of the truncated file stayed: the real one still restores.
    expect((await twowayCli(['restore', '--from', file, ...storeArgs(target)])).code).toBe(0);
    cleanup();
  }, 240_000);
});
