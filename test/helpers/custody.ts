import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import type { TestPki } from '../fixtures/pki.js';
import { curl, makeCsr, writeFile } from './edge-clients.js';
import type { Echo, MtlsServer } from './mtls-server.js';
import { createTenant, type TestTwoway } from './twoway.js';

/** What {@link seedCustody} made: one identity mapped to the upstream, one issued client certificate. */
export interface Custody {
  apiKey: string;
  fingerprintSha256: string;
  /** The issued client certificate and its key, as files in `dir`. */
  cert: string;
  key: string;
  dir: string;
}

/**
 * Puts every kind of sealed key into a Twoway: tenant `acme`, an identity (its key sealed) mapped
 * to `upstream`, and a client certificate issued by the platform CA (whose keys are sealed) from an
 * `openssl req` CSR.
 */
export async function seedCustody(
  twoway: TestTwoway,
  pki: TestPki,
  upstream: MtlsServer,
  dir: string,
): Promise<Custody> {
  const apiKey = await createTenant(twoway, 'acme');
  const leaf = await pki.leaf({ cn: 'acme-client', key: 'ec256' });
  const identity = await twoway.call('/v1/tenants/acme/identities', {
    method: 'POST',
    token: apiKey,
    json: {
      name: 'client',
      certificatePem: leaf.certPem,
      privateKeyPem: leaf.keyPem,
      chainPem: pki.intermediate.certPem,
    },
  });
  expect(identity.status).toBe(201);
  const { id } = (await identity.json()) as { id: string };
  const mapping = await twoway.call('/v1/tenants/acme/mappings', {
    method: 'POST',
    token: apiKey,
    json: {
      name: 'api',
      service: 'api',
      url: upstream.url,
      match: 'prefix',
      identityId: id,
      trustAnchorsPem: pki.root.certPem,
    },
  });
  expect(mapping.status).toBe(201);
  // A connection's sealed secret and the platform outbound CA's keys are moved by a rotation too.
  const connection = await twoway.call('/v1/tenants/acme/connections', {
    method: 'POST',
    token: apiKey,
    json: {
      name: 'partner',
      baseUrl: upstream.url,
      auth: { type: 'header', headerName: 'X-Api-Key', headerValue: 'partner-secret-0001' },
    },
  });
  expect(connection.status).toBe(201);
  const platform = await twoway.call('/v1/platform/identities', {
    method: 'POST',
    json: { name: 'hooks', issue: { commonName: 'hooks.example' } },
  });
  expect(platform.status).toBe(201);
  const settings = await twoway.call('/v1/tenants/acme/notification-settings', {
    method: 'PUT',
    token: apiKey,
    json: {
      emails: [],
      webhookUrls: ['https://hooks.acme.example/twoway'],
      thresholdsDays: [7],
      rotateWebhookSecret: true,
    },
  });
  expect(settings.status).toBe(200);
  const csr = await makeCsr(dir, 'edge', '/CN=acme-service');
  const signed = await twoway.call('/v1/tenants/acme/certificate-signing-requests', {
    method: 'POST',
    token: apiKey,
    json: { name: 'service', csrPem: readFileSync(csr.csr, 'utf8') },
  });
  expect(signed.status).toBe(201);
  const { certificatePem } = (await signed.json()) as { certificatePem: string };
  return {
    apiKey,
    fingerprintSha256: leaf.fingerprintSha256,
    cert: writeFile(dir, 'edge.crt', certificatePem),
    key: csr.key,
    dir,
  };
}

/**
 * Checks that a Twoway (restarted, rotated or restored) still uses every sealed key: the identity
 * forwards with its certificate, the issued client certificate is admitted at the edge, and the CA
 * signs a new CSR.
 */
export async function expectCustody(
  twoway: TestTwoway,
  upstream: MtlsServer,
  custody: Custody,
): Promise<void> {
  const forwarded = await fetch(`${twoway.url}/v1/runtime/forward`, {
    headers: {
      authorization: `Bearer ${custody.apiKey}`,
      'twoway-forward-url': `${upstream.url}/items`,
      'twoway-service': 'api',
    },
  });
  expect(forwarded.status).toBe(200);
  expect(((await forwarded.json()) as Echo).clientFingerprint).toBe(custody.fingerprintSha256);

  const ca = writeFile(custody.dir, 'ca.pem', await (await fetch(`${twoway.url}/v1/ca/certificates`)).text());
  const hello = await curl(`${twoway.edgeUrl}/v1/tenants/acme/mtls/hello`, {
    ca,
    cert: custody.cert,
    key: custody.key,
    apiKey: custody.apiKey,
  });
  expect(hello.status).toBe(200);

  const csr = await makeCsr(custody.dir, 'again', '/CN=acme-again');
  const signed = await twoway.call('/v1/tenants/acme/certificate-signing-requests', {
    method: 'POST',
    token: custody.apiKey,
    json: { name: 'again', csrPem: readFileSync(csr.csr, 'utf8') },
  });
  expect(signed.status).toBe(201);
}

const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/index.js');

/**
 * Runs `twoway <args>` (the built CLI) with `env` added to this process's environment (SOFTHSM2_CONF
 * included); resolves with the JSON it printed, stderr and exit code, never throws.
 */
export async function twowayCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; json: unknown; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [CLI, ...args], {
      env: { ...process.env, TWOWAY_LOG_LEVEL: 'warn', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, json: JSON.parse(stdout) as unknown, stderr };
  } catch (err) {
    const failed = err as { code?: number; stderr?: string };
    return { code: failed.code ?? 1, json: undefined, stderr: failed.stderr ?? '' };
  }
}
