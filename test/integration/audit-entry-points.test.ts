import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { makeCsr, run, writeFile } from '../helpers/edge-clients.js';
import { ManualClock } from '../helpers/lifecycle.js';
import { startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/index.js');
const HOUR_MS = 3_600_000;

type Detail = Record<string, unknown>;

/**
 * `detail` with the values that belong to one object (its id, fingerprint, serial number, dates)
 * replaced by their role, so that the details of two objects made the same way compare equal
 * exactly when every other field is the same. `own` maps role → value.
 */
function normalised(detail: Detail, own: Record<string, string>): Detail {
  const roles = new Map(Object.entries(own).map(([role, value]) => [value, `<${role}>`]));
  return Object.fromEntries(
    Object.entries(detail).map(([key, value]) => [
      key,
      typeof value === 'string' ? (roles.get(value) ?? value) : value,
    ]),
  );
}

describe('an audited action writes the same details over HTTP, from the CLI and from the scheduler', () => {
  const files = tempDir('twoway-entry-points-');
  const clock = new ManualClock();
  let pki: TestPki;
  let twoway: TestTwoway & { dataDir: string };
  let env: Record<string, string>;
  let httpKey: string;

  beforeAll(async () => {
    pki = await makePki();
    // The CLI opens the same database with the same KEK.
    env = { TWOWAY_MASTER_KEY: randomBytes(32).toString('base64') };
    twoway = await startTestTwoway(env, { clock });
    env.TWOWAY_DATA_DIR = twoway.dataDir;
  });

  afterAll(async () => {
    await twoway?.close();
    files.cleanup();
  });

  async function cli(...args: string[]): Promise<Record<string, string>> {
    const result = await run('node', [CLI, ...args], {
      env: { ...process.env, ...env, TWOWAY_LOG_LEVEL: 'warn' },
    });
    expect({ args: args.slice(0, 2), code: result.code, stderr: result.stderr }).toEqual({
      args: args.slice(0, 2),
      code: 0,
      stderr: '',
    });
    return JSON.parse(result.stdout) as Record<string, string>;
  }

  async function http(path: string, method: string, json?: unknown): Promise<Record<string, string>> {
    const response = await twoway.call(path, {
      method,
      token: httpKey,
      ...(json !== undefined ? { json } : {}),
    });
    const text = await response.text();
    expect(response.status, `${method} ${path}: ${text}`).toBeLessThan(300);
    return JSON.parse(text) as Record<string, string>;
  }

  /** The detail of the one entry of `action` on `objectId` in the tenant's audit log, and its actor. */
  async function entry(
    tenant: string,
    action: string,
    objectId: string,
  ): Promise<{ actor: string; detail: Detail }> {
    const response = await twoway.call(
      `/v1/tenants/${tenant}/audit-events?action=${action}&objectId=${objectId}`,
    );
    const { items } = (await response.json()) as { items: { actor: string; detail: Detail }[] };
    expect(items, `${tenant} ${action} ${objectId}`).toHaveLength(1);
    return items[0] as { actor: string; detail: Detail };
  }

  const pem = (leaf: CertKey) => ({
    certificatePem: leaf.certPem,
    privateKeyPem: leaf.keyPem,
    chainPem: pki.intermediate.certPem,
  });

  test('tenant, identity, mapping and client certificate actions: HTTP and CLI alike', async () => {
    const created = await twoway.call('/v1/tenants', {
      method: 'POST',
      json: { id: 'by-http', name: 'Same' },
    });
    httpKey = ((await created.json()) as { apiKey: string }).apiKey;
    await cli('tenant', 'create', '--id', 'by-cli', '--name', 'Same');
    const tenantHttp = await entry('by-http', 'tenant.create', 'by-http');
    const tenantCli = await entry('by-cli', 'tenant.create', 'by-cli');
    expect(tenantCli.actor).toBe('cli');
    expect(normalised(tenantCli.detail, { key: String(tenantCli.detail.apiKeyId) })).toEqual(
      normalised(tenantHttp.detail, { key: String(tenantHttp.detail.apiKeyId) }),
    );

    // The same certificate and key through both doors: the details are equal, value for value.
    const leaf = await pki.leaf({ cn: 'entry-points' });
    const identityHttp = await http('/v1/tenants/by-http/identities', 'POST', {
      name: 'client',
      ...pem(leaf),
    });
    const identityCli = await cli(
      ...['identity', 'import', '--tenant', 'by-cli', '--name', 'client'],
      ...[
        '--cert',
        writeFile(files.dir, 'leaf.pem', leaf.certPem),
        '--key',
        writeFile(files.dir, 'leaf.key', leaf.keyPem),
      ],
      ...['--chain', writeFile(files.dir, 'chain.pem', pki.intermediate.certPem)],
    );
    const identityCreated = await entry('by-http', 'identity.create', identityHttp.id as string);
    expect(identityCreated.detail).toMatchObject({ notAfter: leaf.cert.notAfter.toISOString() });
    expect((await entry('by-cli', 'identity.create', identityCli.id as string)).detail).toEqual(
      identityCreated.detail,
    );

    const url = 'https://api.entry-points.example/';
    const mappingHttp = await http('/v1/tenants/by-http/mappings', 'POST', {
      name: 'm',
      service: 'api',
      url,
      identityId: identityHttp.id,
    });
    const mappingCli = await cli(
      ...['mapping', 'add', '--tenant', 'by-cli', '--identity', identityCli.id as string],
      ...['--service', 'api', '--url', url, '--name', 'm'],
    );
    expect(
      normalised((await entry('by-cli', 'mapping.create', mappingCli.id as string)).detail, {
        identity: identityCli.id as string,
      }),
    ).toEqual(
      normalised((await entry('by-http', 'mapping.create', mappingHttp.id as string)).detail, {
        identity: identityHttp.id as string,
      }),
    );

    // A fingerprint names one tenant: two certificates, told apart by fingerprint only.
    const certificateFacts = (view: Record<string, string>) => ({
      fingerprint: view.fingerprintSha256 as string,
      serial: view.serialNumber as string,
      notAfter: view.notAfter as string,
    });
    const byoc = async (tenant: string, door: 'http' | 'cli') => {
      const own = await pki.leaf({ cn: `byoc-${door}` });
      return door === 'http'
        ? http(`/v1/tenants/${tenant}/client-certificates`, 'POST', {
            name: 'byoc',
            certificatePem: own.certPem,
          })
        : cli(
            'client-cert',
            'add',
            '--tenant',
            tenant,
            '--name',
            'byoc',
            '--file',
            writeFile(files.dir, 'byoc.pem', own.certPem),
          );
    };
    const byocHttp = await byoc('by-http', 'http');
    const byocCli = await byoc('by-cli', 'cli');
    const csr = await makeCsr(files.dir, 'entry', '/CN=entry-points');
    const issuedHttp = await http('/v1/tenants/by-http/certificate-signing-requests', 'POST', {
      name: 'issued',
      csrPem: readFileSync(csr.csr, 'utf8'),
    });
    const issuedCli = await cli('csr', 'sign', '--tenant', 'by-cli', '--name', 'issued', '--csr', csr.csr);
    await http(`/v1/tenants/by-http/client-certificates/${byocHttp.id}/revoke`, 'POST', {
      reason: 'superseded',
    });
    await cli(
      'client-cert',
      'revoke',
      '--tenant',
      'by-cli',
      '--id',
      byocCli.id as string,
      '--reason',
      'superseded',
    );
    for (const [action, viewHttp, viewCli] of [
      ['client_certificate.create', byocHttp, byocCli],
      ['client_certificate.issue', issuedHttp, issuedCli],
      ['client_certificate.revoke', byocHttp, byocCli],
    ] as const) {
      const fromCli = await entry('by-cli', action, viewCli.id as string);
      expect(fromCli.actor).toBe('cli');
      expect(normalised(fromCli.detail, certificateFacts(viewCli)), action).toEqual(
        normalised(
          (await entry('by-http', action, viewHttp.id as string)).detail,
          certificateFacts(viewHttp),
        ),
      );
    }
  }, 120_000);

  test('identity.activate_version: the scheduler writes what a manual activation writes, and when it was due', async () => {
    const [v1, v2] = await Promise.all([pki.leaf({ cn: 'activate-v1' }), pki.leaf({ cn: 'activate-v2' })]);
    const activateAt = new Date(clock.now().getTime() + HOUR_MS);
    const identity = async (version2: Record<string, unknown>) => {
      const { id } = await http('/v1/tenants/by-http/identities', 'POST', { name: 'rotated', ...pem(v1) });
      await http(`/v1/tenants/by-http/identities/${id}/versions`, 'POST', { ...pem(v2), ...version2 });
      return id as string;
    };
    const byHand = await identity({ activate: false });
    const scheduled = await identity({ activateAt: activateAt.toISOString() });
    await http(`/v1/tenants/by-http/identities/${byHand}/versions/2/activate`, 'POST');
    clock.advance(2 * HOUR_MS);
    expect((await twoway.lifecycle.scheduler.runOnce()).activated).toBe(1);

    const manual = await entry('by-http', 'identity.activate_version', byHand);
    const bySchedule = await entry('by-http', 'identity.activate_version', scheduled);
    expect(bySchedule.actor).toBe('scheduler');
    expect(manual.detail).toEqual({
      version: 2,
      fingerprintSha256: v2.fingerprintSha256,
      notAfter: v2.cert.notAfter.toISOString(),
      previousVersion: 1,
    });
    expect(bySchedule.detail).toEqual({ ...manual.detail, scheduledFor: activateAt.toISOString() });
  });
});
