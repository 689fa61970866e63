import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePkcs12, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { freePort } from '../helpers/nginx.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/index.js');

/** Kills a detached child and everything it started (its process group). */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid) process.kill(-child.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

async function waitFor(url: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

describe('README walk-through and CLI', () => {
  const dirs: { cleanup(): void }[] = [];
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const child of children) killGroup(child);
    for (const dir of dirs) dir.cleanup();
  });

  test('the README walk-through runs as written, with curl against openssl s_server', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Walk-through with curl'));
    const script = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
    expect(script).toBeDefined();
    const apiPort = await freePort();
    const tlsPort = await freePort();
    const work = tempDir('twoway-readme-');
    dirs.push(work);
    const child = spawn(
      'bash',
      [
        '-euo',
        'pipefail',
        '-c',
        script!.replaceAll('8080', String(apiPort)).replaceAll('9443', String(tlsPort)),
      ],
      {
        cwd: work.dir,
        detached: true,
        env: {
          ...process.env,
          TWOWAY: ROOT,
          TWOWAY_HTTP_PORT: String(apiPort),
          TWOWAY_EDGE_PORT: '0',
          TWOWAY_DATA_DIR: join(work.dir, 'data'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += String(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += String(d);
    });
    const code = await new Promise<number | null>((done) => {
      const timer = setTimeout(() => done(-1), 90_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        done(c);
      });
    });
    killGroup(child);
    expect({ code, stderr: code === 0 ? '' : stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toContain('acme-client');
  }, 120_000);

  describe('CLI commands on the store, picked up by a running server', () => {
    let pki: TestPki;
    let upstream: MtlsServer;
    const data = tempDir('twoway-cli-');
    dirs.push(data);
    const env = {
      ...process.env,
      TWOWAY_DATA_DIR: join(data.dir, 'data'),
      TWOWAY_OPERATOR_TOKEN: 'cli-operator-token-0123456789',
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
      TWOWAY_CHANGE_POLL_INTERVAL_MS: '100',
      TWOWAY_LOG_LEVEL: 'warn',
      TWOWAY_EDGE_PORT: '0',
    };
    const cli = async (...args: string[]) =>
      JSON.parse((await run('node', [CLI, ...args], { env })).stdout) as Record<string, unknown>;

    beforeAll(async () => {
      pki = await makePki();
      upstream = await startMtlsServer(pki);
    });
    afterAll(() => upstream?.close());

    test('tenant create, identity import, mapping add; serve forwards with the imported certificate', async () => {
      const tenant = await cli('tenant', 'create', '--id', 'cli-co', '--name', 'CLI Co');
      expect(tenant.apiKey).toMatch(/^tw_/);
      const leaf = await pki.leaf({ cn: 'cli-client', key: 'ec384' });
      writeFileSync(
        join(data.dir, 'client.p12'),
        makePkcs12(leaf, [pki.intermediate], 'cli-pass', { legacy: true }),
      );
      writeFileSync(join(data.dir, 'pass.txt'), 'cli-pass\n');
      writeFileSync(join(data.dir, 'ca.pem'), pki.root.certPem);
      const identity = await cli(
        'identity',
        'import',
        '--tenant',
        'cli-co',
        '--file',
        join(data.dir, 'client.p12'),
        '--password-file',
        join(data.dir, 'pass.txt'),
      );
      expect(JSON.stringify(identity)).not.toContain('cli-pass');

      const port = await freePort();
      const serve = spawn('node', [CLI, 'serve'], {
        env: { ...env, TWOWAY_HTTP_PORT: String(port) },
        detached: true,
        stdio: 'ignore',
      });
      children.push(serve);
      await waitFor(`http://127.0.0.1:${port}/readyz`, 20_000);

      const forward = () =>
        fetch(`http://127.0.0.1:${port}/v1/runtime/forward`, {
          headers: {
            authorization: `Bearer ${tenant.apiKey as string}`,
            'twoway-service': 'api',
            'twoway-forward-url': `${upstream.url}/cli`,
          },
        });
      expect((await forward()).headers.get('twoway-error')).toBe('no_mapping');

      // Added by another process while serve runs: picked up by the revision poll.
      await cli(
        'mapping',
        'add',
        '--tenant',
        'cli-co',
        '--identity',
        identity.id as string,
        '--url',
        `${upstream.url}/`,
        '--trust-anchors',
        join(data.dir, 'ca.pem'),
      );
      let response = await forward();
      const deadline = Date.now() + 5_000;
      while (response.status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        response = await forward();
      }
      expect(response.status).toBe(200);
      expect(((await response.json()) as Echo).clientFingerprint).toBe(leaf.fingerprintSha256);
      killGroup(serve);
    });

    test('a CLI error is one clear line and a non-zero exit', async () => {
      const failed = await run(
        'node',
        [CLI, 'identity', 'import', '--tenant', 'cli-co', '--file', join(ROOT, 'package.json')],
        { env },
      ).catch((err: { code: number; stderr: string }) => err);
      expect(failed).toMatchObject({ code: 1 });
      expect((failed as { stderr: string }).stderr).toMatch(/^twoway: unsupported_format: /);
    });
  });
});
