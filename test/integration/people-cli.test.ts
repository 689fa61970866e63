import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, test } from 'vitest';
import { makePki, tempDir } from '../fixtures/pki.js';
import { Browser } from '../helpers/browser.js';
import { build, createTenant, OPERATOR_TOKEN, uploadPem } from '../helpers/twoway.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/index.js');

describe("README: giving your customers' admins access", () => {
  const twoway = build();

  test('the portal-link flow in curl runs as written', async () => {
    const pki = await makePki();
    const key = await createTenant(twoway, 'acme', 'Acme Corp');
    const leaf = await pki.leaf({ cn: 'acme-client' });
    const identity = await uploadPem(twoway, 'acme', leaf, pki.intermediate.certPem, {
      token: key,
      name: 'acme',
    });
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf("## Giving your customers' admins access"));
    const script = /```bash\n([\s\S]*?)```/.exec(section)?.[1];
    expect(script).toBeDefined();
    const port = new URL(twoway.url).port;
    const work = tempDir('twoway-readme-people-');
    try {
      const { stdout } = await run(
        'bash',
        ['-euo', 'pipefail', '-c', (script ?? '').replaceAll('8080', port)],
        {
          cwd: work.dir,
          env: { ...process.env, KEY: key, IDENTITY: identity },
          timeout: 60_000,
        },
      );
      expect(stdout.trim().split('\n')).toEqual([
        'forbidden',
        `303 http://127.0.0.1:${port}/ui/identities?intent=upload-certificate`,
        '{"kind":"member","memberId":"user-42","permissions":["identities:read","identities:write","connections:read","connections:write"]}',
        'acme',
        'csrf_failed',
        'acme-prod',
        '404',
      ]);
    } finally {
      work.cleanup();
    }
  });
});

describe('people commands of the CLI, on the store of a running server', () => {
  const twoway = build({ env: { TWOWAY_CHANGE_POLL_INTERVAL_MS: '100' } });
  let env: NodeJS.ProcessEnv;
  const cli = async (...args: string[]) => {
    const { stdout } = await run('node', [CLI, ...args], { env });
    return stdout.trim() === '' ? undefined : (JSON.parse(stdout) as unknown);
  };

  beforeAll(() => {
    env = {
      ...process.env,
      TWOWAY_DATA_DIR: twoway.dataDir,
      TWOWAY_HTTP_PORT: new URL(twoway.url).port,
      TWOWAY_OPERATOR_TOKEN: OPERATOR_TOKEN,
      TWOWAY_LOG_LEVEL: 'warn',
    };
  });

  test('role, member, api-key and portal-link commands act at once on the running server; console-link signs the operator in', async () => {
    const tenant = (await cli('tenant', 'create', '--id', 'clip')) as { apiKey: string };
    expect(
      await cli('role', 'put', '--tenant', 'clip', '--name', 'forwarder', '--permissions', 'runtime:forward'),
    ).toMatchObject({
      name: 'forwarder',
      permissions: ['runtime:forward'],
      builtIn: false,
    });
    const bad = await run(
      'node',
      [CLI, 'role', 'put', '--tenant', 'clip', '--name', 'x', '--permissions', 'all:do'],
      {
        env,
      },
    ).catch((err: { code: number; stderr: string }) => err);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/^twoway: bad_request: /) });
    expect(
      await cli(
        'member',
        'put',
        '--tenant',
        'clip',
        '--id',
        'u-1',
        '--email',
        'u1@clip.example',
        '--roles',
        'admin',
      ),
    ).toMatchObject({ id: 'u-1', tenant: 'clip', email: 'u1@clip.example', roles: ['admin'] });
    expect(((await cli('member', 'list', '--tenant', 'clip')) as { id: string }[]).map((m) => m.id)).toEqual([
      'u-1',
    ]);

    const backend = (await cli(
      'api-key',
      'create',
      '--tenant',
      'clip',
      '--name',
      'backend',
      '--roles',
      'forwarder',
    )) as {
      id: string;
      apiKey: string;
      roles: string[];
    };
    expect(backend.roles).toEqual(['forwarder']);
    const identities = await twoway.call('/v1/tenants/clip/identities', { token: backend.apiKey });
    expect(identities.status).toBe(403);
    const listed = (await cli('api-key', 'list', '--tenant', 'clip')) as Record<string, unknown>[];
    expect(listed.map((k) => k.name).sort()).toEqual(['backend', 'initial']);
    expect(JSON.stringify(listed)).not.toMatch(/tw_|apiKey|token/i);

    const link = (await cli(
      'portal-link',
      'create',
      '--tenant',
      'clip',
      '--member',
      'u-1',
      '--return-url',
      '/ui/x',
    )) as {
      url: string;
    };
    expect(link.url).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:${new URL(twoway.url).port}/v1/portal/twl_`),
    );
    const member = new Browser(twoway.url);
    const opened = await member.fetch(link.url);
    expect([opened.status, opened.headers.get('location')]).toEqual([303, '/ui/x']);
    expect(await (await member.fetch('/v1/session')).json()).toMatchObject({
      kind: 'member',
      memberId: 'u-1',
    });

    const consoleLink = (await cli('console-link')) as { url: string };
    const operator = new Browser(twoway.url);
    expect((await operator.fetch(consoleLink.url)).status).toBe(303);
    expect(await (await operator.fetch('/v1/session')).json()).toMatchObject({ kind: 'operator' });

    // Deleted by the CLI: the member's session ends with the next request.
    await cli('member', 'delete', '--tenant', 'clip', '--id', 'u-1');
    expect((await member.fetch('/v1/session')).status).toBe(401);
    // Revoked by the CLI: the server stops accepting the key once it sees the change.
    expect((await twoway.call('/v1/tenants/clip', { token: backend.apiKey })).status).toBe(200);
    await cli('api-key', 'revoke', '--tenant', 'clip', '--id', backend.id);
    let status = 200;
    const deadline = Date.now() + 5_000;
    while (status !== 401 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await twoway.call('/v1/tenants/clip', { token: backend.apiKey })).status;
    }
    expect(status).toBe(401);

    const audit = (await (
      await twoway.call('/v1/tenants/clip/audit-events', { token: tenant.apiKey })
    ).json()) as {
      items: { action: string; actor: string }[];
    };
    expect(audit.items.map((e) => `${e.actor} ${e.action}`).reverse()).toEqual([
      'cli tenant.create',
      'cli role.create',
      'cli member.create',
      'cli api_key.create',
      'cli portal_link.create',
      'member:u-1 session.start',
      'cli member.delete',
      'cli api_key.revoke',
    ]);
  }, 120_000);
});
