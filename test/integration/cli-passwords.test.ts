import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePkcs12, makePki, tempDir } from '../fixtures/pki.js';
import { CLI, runCli } from '../helpers/cli.js';

const PASSWORD = 'p12-Secret-7';
const twoway = runCli;

/** `script` (util-linux) runs a command on a pseudo-terminal: the only way to test the prompt. */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('CLI passwords never come from the command line', () => {
  const work = tempDir('twoway-cli-pass-');
  const p12 = join(work.dir, 'client.p12');
  const env = {
    ...process.env,
    TWOWAY_DATA_DIR: join(work.dir, 'data'),
    TWOWAY_LOG_LEVEL: 'warn',
  };
  const importArgs = ['identity', 'import', '--tenant', 'pass-co', '--file', p12];

  beforeAll(async () => {
    const pki = await makePki('CLI Password');
    writeFileSync(p12, makePkcs12(await pki.leaf({ cn: 'pass-client' }), [pki.intermediate], PASSWORD));
    expect((await twoway(['tenant', 'create', '--id', 'pass-co'], env)).code).toBe(0);
  });
  afterAll(() => work.cleanup());

  test('--password is refused as an unknown option (exit 2), and nothing is imported', async () => {
    const refused = await twoway([...importArgs, '--password', PASSWORD], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("unknown option '--password'");
    expect(refused.stdout).toBe('');
  });

  test('a missing --password-file is a usage error (exit 2) naming the file, not internal_error', async () => {
    const missing = join(work.dir, 'no-such.pass');
    const failed = await twoway([...importArgs, '--password-file', missing], env);
    expect(failed).toMatchObject({ code: 2, stdout: '' });
    expect(failed.stderr).toBe(`twoway: cannot read --password-file ${missing}: no such file\n`);
  });

  test('--password-file and --password-stdin together are a usage error (exit 2)', async () => {
    const both = await twoway([...importArgs, '--password-file', p12, '--password-stdin'], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('cannot be used with');
  });

  test('--password-file reads the password (one trailing newline dropped)', async () => {
    writeFileSync(join(work.dir, 'p12.pass'), `${PASSWORD}\n`, { mode: 0o600 });
    const done = await twoway([...importArgs, '--password-file', join(work.dir, 'p12.pass')], env);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({ tenant: 'pass-co', status: 'active' });
  });

  test('--password-stdin reads the password from a pipe; a wrong one is bad_password (exit 1)', async () => {
    const done = await twoway([...importArgs, '--password-stdin'], env, `${PASSWORD}\n`);
    expect(done.code).toBe(0);
    expect(done.stdout).not.toContain(PASSWORD);
    const wrong = await twoway([...importArgs, '--password-stdin'], env, 'not-it\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^twoway: bad_password: /);
  });

  test('TWOWAY_IDENTITY_PASSWORD is read through the configuration', async () => {
    const done = await twoway(importArgs, { ...env, TWOWAY_IDENTITY_PASSWORD: PASSWORD });
    expect(done.code).toBe(0);
  });

  test.skipIf(!hasScript)(
    'on a terminal, a file that needs a password is answered at a prompt that does not echo',
    async () => {
      const command = ['node', CLI, ...importArgs].map((a) => `'${a}'`).join(' ');
      const child = spawn('script', ['-qec', command, '/dev/null'], { env });
      let seen = '';
      let typed = false;
      child.stdout.on('data', (chunk: Buffer) => {
        seen += String(chunk);
        // Typed only once the prompt shows: type-ahead would be echoed by the terminal, as for any program.
        if (!typed && seen.includes(`Password for ${p12}:`)) {
          typed = true;
          child.stdin.write(`${PASSWORD}\r`);
        }
      });
      const code = await new Promise<number | null>((done) => child.on('exit', done));
      expect(typed).toBe(true);
      expect(code).toBe(0);
      expect(seen).not.toContain(PASSWORD);
      expect(seen).toContain('"tenant": "pass-co"');
    },
    30_000,
  );
});
