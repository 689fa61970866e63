import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { tempDir } from '../fixtures/pki.js';
import { type Outcome, runCli } from '../helpers/cli.js';

const PASSWORD = 'cli-basic-Pa55-3e9a71';
const HEADER_VALUE = 'cli-header-V4lue-c02d58';

describe('twoway connection add/list/show/update/delete', () => {
  const work = tempDir('twoway-cli-conn-');
  const dataDir = join(work.dir, 'data');
  const env = { ...process.env, TWOWAY_DATA_DIR: dataDir, TWOWAY_LOG_LEVEL: 'warn' };
  const secretFile = join(work.dir, 'basic.pass');
  let id: string;

  /** `twoway connection <verb> --tenant cli-co ...args`. */
  const connection = (verb: string, args: string[], stdin = ''): Promise<Outcome> =>
    runCli(['connection', verb, '--tenant', 'cli-co', ...args], env, stdin);
  /** `connection add` of `name` to https://x.example/ with `args`. */
  const add = (name: string, args: string[], stdin = ''): Promise<Outcome> =>
    connection('add', ['--name', name, '--base-url', 'https://x.example/', ...args], stdin);

  beforeAll(async () => {
    expect((await runCli(['tenant', 'create', '--id', 'cli-co'], env)).code).toBe(0);
    writeFileSync(secretFile, `${PASSWORD}\n`, { mode: 0o600 });
  });
  afterAll(() => work.cleanup());

  test('add takes the secret from a file and prints the view without it', async () => {
    const added = await connection('add', [
      ...['--name', 'billing', '--base-url', 'https://billing.example.com/v1'],
      ...['--auth', 'basic', '--username', 'acme', '--secret-file', secretFile],
    ]);
    expect(added.code, added.stderr).toBe(0);
    const view = JSON.parse(added.stdout) as { id: string; auth: unknown; clientCertificate: unknown };
    expect(view.auth).toEqual({ type: 'basic', username: 'acme', secretSet: true });
    expect(view.clientCertificate).toEqual({
      enabled: false,
      available: false,
      unavailableReason: 'no_identity',
    });
    expect(added.stdout).not.toContain(PASSWORD);
    id = view.id;
  });

  test('a secret on the command line is refused as an unknown option, and nothing is saved', async () => {
    const refused = await add('argv', ['--auth', 'basic', '--username', 'u', '--password', PASSWORD]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("unknown option '--password'");
    const missing = await add('nosecret', ['--auth', 'header', '--header-name', 'X-Key']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^twoway: connection_invalid: /);
    const bad = await add(
      'bad',
      ['--auth', 'header', '--header-name', 'Bad Name', '--secret-stdin'],
      'value',
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^twoway: bad_request: /);
    const list = JSON.parse((await connection('list', [])).stdout) as { items: { name: string }[] };
    expect(list.items.map((c) => c.name)).toEqual(['billing']);
  });

  test('update reads a new secret from standard input; show and list never print it', async () => {
    const updated = await connection(
      'update',
      ['--id', id, '--auth', 'header', '--header-name', 'X-Api-Key', '--secret-stdin'],
      `${HEADER_VALUE}\n`,
    );
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({
      auth: { type: 'header', headerName: 'X-Api-Key', secretSet: true },
    });
    const shown = await connection('show', ['--id', id]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, name: 'billing' });
    const renamed = await connection('update', ['--id', id, '--name', 'billing-eu', '--enabled', 'false']);
    expect(JSON.parse(renamed.stdout)).toMatchObject({
      name: 'billing-eu',
      enabled: false,
      auth: { secretSet: true },
    });
    const switched = await connection('update', ['--id', id, '--client-certificate', 'on']);
    expect(switched.code).toBe(1);
    expect(switched.stderr).toMatch(/^twoway: client_certificate_unavailable: /);
    for (const output of [updated, shown, renamed]) {
      expect(output.stdout).not.toContain(HEADER_VALUE);
      expect(output.stdout).not.toContain(PASSWORD);
    }
  });

  test('delete removes it; every change is audited as the CLI; no secret in the database file', async () => {
    const deleted = await connection('delete', ['--id', id]);
    expect(JSON.parse(deleted.stdout)).toEqual({ id, deleted: true });
    const gone = await connection('show', ['--id', id]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/^twoway: not_found: /);

    const store = await openSqliteStore(join(dataDir, 'twoway.db'));
    try {
      const { items: events } = await store.listAuditEvents(
        'cli-co',
        { objectType: 'connection' },
        { limit: 50 },
      );
      expect(events.map((e) => [e.action, e.actor]).reverse()).toEqual([
        ['connection.create', 'cli'],
        ['connection.update', 'cli'],
        ['connection.update', 'cli'],
        ['connection.delete', 'cli'],
      ]);
    } finally {
      await store.close();
    }
    for (const file of readdirSync(dataDir).filter((f) => f.startsWith('twoway.db'))) {
      const bytes = readFileSync(join(dataDir, file)).toString('latin1');
      expect(bytes).not.toContain(PASSWORD);
      expect(bytes).not.toContain(HEADER_VALUE);
    }
  });
});
