import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { openBackends, StartupError } from '../../src/main.js';
import { openStore } from '../../src/store/index.js';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';

const backends = await appBackends();

describe.each(backends)('start-up with the KEK on $name', (backend) => {
  test('first start creates a 0600 key file; a missing or wrong KEK is refused and nothing is written', async () => {
    const { dir, cleanup } = tempDir('twoway-startup-');
    const env: Record<string, string> = { TWOWAY_DATA_DIR: dir, ...(await backend.env()) };
    const keyFile = join(dir, 'master.key');

    const first = await openBackends(loadConfig(env));
    await first.store.createTenant({ id: 'kept', name: 'Kept', createdAt: new Date() });
    const revision = await first.store.getRevision();
    await first.store.close();
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);

    // Same key: starts.
    const again = await openBackends(loadConfig(env));
    expect(await again.store.getTenant('kept')).toBeDefined();
    await again.store.close();

    const sqliteFile = join(dir, 'twoway.db');
    const snapshot = () => (backend.name === 'sqlite' ? readFileSync(sqliteFile).toString('hex') : '');
    const before = snapshot();

    // Wrong key from the environment: refused.
    const wrong = { ...env, TWOWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    await expect(openBackends(loadConfig(wrong))).rejects.toThrow(StartupError);
    await expect(openBackends(loadConfig(wrong))).rejects.toThrow(/does not match this database/);

    // Key file gone: refused, and no new key file is made for a database with data.
    rmSync(keyFile);
    await expect(openBackends(loadConfig(env))).rejects.toThrow(/no KEK was found/);
    expect(existsSync(keyFile)).toBe(false);

    expect(snapshot()).toBe(before);
    const raw = await openStore(env.TWOWAY_DATABASE_URL, dir);
    expect(await raw.getRevision()).toBe(revision);
    await raw.close();

    // A database with data but without its KEK check value accepts no KEK at all.
    const withKey = { ...env, TWOWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    const fresh = await openStore(env.TWOWAY_DATABASE_URL, dir);
    await fresh.setMeta('kek_check', Buffer.alloc(0));
    await fresh.close();
    await expect(openBackends(loadConfig(withKey))).rejects.toThrow(StartupError);
    cleanup();
  });
});
