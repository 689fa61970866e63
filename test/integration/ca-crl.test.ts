import { createPrivateKey, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { caKeyAad } from '../../src/ca/platform-ca.js';
import { fingerprintSha256 } from '../../src/certificates/index.js';
import { loadConfig } from '../../src/config/config.js';
import { open } from '../../src/kms/envelope.js';
import { openBackends } from '../../src/main.js';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { curl, makeByoc, makeCsr, openssl, run, verifyIssued, writeFile } from '../helpers/edge-clients.js';
import { build, buildInTest, createTenant, type TestTwoway } from '../helpers/twoway.js';

const backends = await appBackends();
const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/index.js');

describe.each(backends)('platform CA and CRL on $name', (backend) => {
  const files = tempDir('twoway-ca-');
  const shared = {
    TWOWAY_MASTER_KEY: randomBytes(32).toString('base64'),
    TWOWAY_CHANGE_POLL_INTERVAL_MS: '100',
  };
  const twoway = build({ backend, env: shared });
  /** For the second process and the CLI: same database, same KEK, a quick revision poll. */
  let env: Record<string, string>;
  let apiKey: string;

  beforeAll(async () => {
    const { databaseUrl } = twoway.config;
    env = {
      ...shared,
      TWOWAY_DATA_DIR: twoway.dataDir,
      ...(databaseUrl ? { TWOWAY_DATABASE_URL: databaseUrl } : {}),
    };
    apiKey = await createTenant(twoway, 'acme', 'Acme');
  });

  afterAll(() => files.cleanup());

  async function sign(name: string): Promise<{ id: string; cert: string; key: string; serial: string }> {
    const csr = await makeCsr(files.dir, name, `/CN=${name}`);
    const answer = await twoway.call('/v1/tenants/acme/certificate-signing-requests', {
      method: 'POST',
      token: apiKey,
      json: { name, csrPem: readFileSync(csr.csr, 'utf8') },
    });
    expect(answer.status).toBe(201);
    const view = (await answer.json()) as { id: string; certificatePem: string; serialNumber: string };
    return {
      id: view.id,
      cert: writeFile(files.dir, `${name}.crt`, view.certificatePem),
      key: csr.key,
      serial: view.serialNumber,
    };
  }

  async function fetchCrl(name: string): Promise<{ pem: string; text: string }> {
    // Public: no Authorization header.
    const response = await fetch(`${twoway.url}/v1/ca/crl`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/pkix-crl');
    writeFile(files.dir, `${name}.der`, Buffer.from(await response.arrayBuffer()));
    const text = await openssl(files.dir, 'crl', '-inform', 'DER', '-in', `${name}.der`, '-noout', '-text');
    await openssl(files.dir, 'crl', '-inform', 'DER', '-in', `${name}.der`, '-out', `${name}.pem`);
    return { pem: join(files.dir, `${name}.pem`), text };
  }

  test('the CA endpoints are public, and the chain is an issuing CA (pathlen 0) under a self-signed root', async () => {
    const response = await fetch(`${twoway.url}/v1/ca/certificates`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/pem-certificate-chain/);
    const pem = await response.text();
    const [issuingPem, rootPem] =
      pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    writeFile(files.dir, 'issuing.pem', issuingPem ?? '');
    writeFile(files.dir, 'root.pem', rootPem ?? '');
    writeFile(files.dir, 'chain.pem', pem);
    const root = new X509Certificate(rootPem ?? '');
    const issuing = new X509Certificate(issuingPem ?? '');
    expect(root.ca && issuing.ca).toBe(true);
    expect(root.checkIssued(root) && root.verify(root.publicKey)).toBe(true);
    expect(issuing.checkIssued(root) && issuing.verify(root.publicKey)).toBe(true);
    expect(root.subject).toMatch(/^O=Twoway\nCN=Twoway Platform Root CA [0-9a-f]{8}$/);
    expect(issuing.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const text = await openssl(files.dir, 'x509', '-in', 'issuing.pem', '-noout', '-text');
    expect(text).toMatch(/CA:TRUE, pathlen:0/);
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    expect(await openssl(files.dir, 'verify', '-CAfile', 'root.pem', 'issuing.pem')).toMatch(/OK/);
  });

  test('openssl crl parses the CRL; openssl verify -crl_check rejects a revoked issued certificate', async () => {
    const revoked = await sign('revoked-one');
    const live = await sign('live-one');
    const before = await fetchCrl('crl-before');
    expect(before.text).toContain('No Revoked Certificates');
    const numberBefore = Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(before.text)?.[1]);
    expect(numberBefore).toBeGreaterThan(0);
    expect(before.text).toMatch(/Issuer: O = Twoway, CN = Twoway Platform Issuing CA/);
    expect(before.text).toContain('X509v3 Authority Key Identifier');

    const answer = await twoway.call(`/v1/tenants/acme/client-certificates/${revoked.id}/revoke`, {
      method: 'POST',
      token: apiKey,
      json: { reason: 'keyCompromise' },
    });
    expect(answer.status).toBe(200);
    const after = await fetchCrl('crl-after');
    expect(Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(after.text)?.[1])).toBe(numberBefore + 1);
    expect(after.text).toContain(`Serial Number: ${revoked.serial.replace(/^00/, '')}`);
    expect(after.text).toContain('Key Compromise');
    expect(after.text).not.toContain(live.serial);
    // The CRL's signature verifies with the issuing CA.
    const signature = await run('openssl', [
      'crl',
      '-in',
      after.pem,
      '-CAfile',
      join(files.dir, 'chain.pem'),
      '-noout',
    ]);
    expect(signature.stderr + signature.stdout).toMatch(/verify OK/);

    const verify = (cert: string) => verifyIssued(files.dir, cert, '-crl_check', '-CRLfile', after.pem);
    const refused = await verify(revoked.cert);
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
    // Without TWOWAY_PUBLIC_URL the service knows no address to name as distribution point.
    expect(await openssl(files.dir, 'x509', '-in', live.cert, '-noout', '-text')).not.toContain(
      'CRL Distribution Points',
    );
    const accepted = await verify(live.cert);
    expect({ code: accepted.code, out: accepted.stdout.trim() }).toEqual({
      code: 0,
      out: `${live.cert}: OK`,
    });

    // Deleting an issued certificate revokes it too (cessationOfOperation): the CA's signature on it
    // stays valid, so relying parties must learn it is gone.
    expect(
      (
        await twoway.call(`/v1/tenants/acme/client-certificates/${live.id}`, {
          method: 'DELETE',
          token: apiKey,
        })
      ).status,
    ).toBe(204);
    const last = await fetchCrl('crl-last');
    expect(last.text).toContain(`Serial Number: ${live.serial.replace(/^00/, '')}`);
    expect(last.text).toContain('Cessation Of Operation');
  });

  test('the CA keys are sealed by the KMS, bound to their role; a second process on the database serves the same CA', async () => {
    const second = await buildInTest({ env });
    const first = await (await fetch(`${twoway.url}/v1/ca/certificates`)).text();
    expect(await (await fetch(`${second.url}/v1/ca/certificates`)).text()).toBe(first);
    await second.close();
    const backends = await openBackends(loadConfig({ ...env }));
    try {
      const ca = await backends.store.getPlatformCa();
      expect(ca).toBeDefined();
      const issuing = new X509Certificate(ca?.issuing.certificatePem ?? '');
      const fingerprint = fingerprintSha256(issuing);
      // The stored bytes are not a key: only the KMS with the right associated data opens them.
      expect(() =>
        createPrivateKey({
          key: ca?.issuing.secret.ciphertext ?? Buffer.alloc(0),
          format: 'der',
          type: 'pkcs8',
        }),
      ).toThrow();
      const pkcs8 = await open(backends.kms, ca!.issuing.secret, caKeyAad('issuing', fingerprint));
      const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      expect(
        createPublicKey(key)
          .export({ type: 'spki', format: 'der' })
          .equals(issuing.publicKey.export({ type: 'spki', format: 'der' })),
      ).toBe(true);
      pkcs8.fill(0);
      await expect(
        open(backends.kms, ca!.issuing.secret, caKeyAad('root', fingerprint)),
      ).rejects.toMatchObject({
        reason: 'unwrap_failed',
      });
    } finally {
      await backends.store.close();
      await backends.kms.close();
    }
  });

  test('CLI: client-cert add, csr sign and client-cert revoke act on the store; the running edge follows', async () => {
    const cliEnv = { ...process.env, ...env, TWOWAY_LOG_LEVEL: 'warn' };
    const cli = async (...args: string[]) => {
      const result = await run('node', [CLI, ...args], { env: cliEnv });
      expect({ args: args.slice(0, 2), code: result.code, stderr: result.stderr }).toEqual({
        args: args.slice(0, 2),
        code: 0,
        stderr: '',
      });
      return JSON.parse(result.stdout) as { id: string; status: string; certificatePem?: string };
    };
    const ca = join(files.dir, 'chain.pem');
    const hello = `${twoway.edgeUrl}/v1/tenants/acme/mtls/hello`;
    const eventually = async (check: () => Promise<boolean>) => {
      const deadline = Date.now() + 5_000;
      while (!(await check()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      return check();
    };

    const byoc = await makeByoc(files.dir, 'cli-byoc', 'acme-cli');
    const added = await cli('client-cert', 'add', '--tenant', 'acme', '--file', byoc.cert, '--name', 'cli');
    expect(added.status).toBe('active');
    // Written by another process: the running edge picks it up with the revision poll.
    expect(
      await eventually(
        async () => (await curl(hello, { ca, cert: byoc.cert, key: byoc.key, apiKey })).status === 200,
      ),
    ).toBe(true);

    const csr = await makeCsr(files.dir, 'cli-csr', '/CN=acme-cli-csr');
    const out = join(files.dir, 'cli-issued.crt');
    const issued = await cli(
      'csr',
      'sign',
      '--tenant',
      'acme',
      '--csr',
      csr.csr,
      '--out',
      out,
      '--days',
      '30',
    );
    expect(issued.certificatePem).toBe(readFileSync(out, 'utf8'));
    // Issued by the platform CA and in the store: admitted at once, even before the poll.
    expect((await curl(hello, { ca, cert: out, key: csr.key, apiKey })).body).toBe('Hello, world!');

    const revoked = await cli(
      'client-cert',
      'revoke',
      '--tenant',
      'acme',
      '--id',
      issued.id,
      '--reason',
      'superseded',
    );
    expect(revoked.status).toBe('revoked');
    expect(
      await eventually(
        async () => (await curl(hello, { ca, cert: out, key: csr.key, apiKey })).status === 403,
      ),
    ).toBe(true);
    const crl = await fetchCrl('crl-cli');
    expect(crl.text).toContain('Superseded');
  });
});

describe('TWOWAY_PUBLIC_URL: the CRL distribution point of issued certificates', () => {
  const files = tempDir('twoway-cdp-');
  let twoway: TestTwoway | undefined;
  let relay: Server | undefined;

  afterAll(() => {
    relay?.closeAllConnections();
    relay?.close();
    files.cleanup();
  });

  test('openssl verify -crl_download fetches the CRL the certificate names, and sees a revocation', async () => {
    // The public address is a reverse proxy in front of Twoway under /gateway/, as in a deployment;
    // it listens first, so its URL is known before Twoway starts.
    const front = createServer((req, res) => {
      fetch(`${twoway?.url}${req.url?.replace(/^\/gateway/, '')}`).then(
        async (answer) => {
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        },
        () => res.writeHead(502).end(),
      );
    });
    front.listen(0, '127.0.0.1');
    await once(front, 'listening');
    relay = front;
    const port = (front.address() as AddressInfo).port;
    twoway = await buildInTest({ env: { TWOWAY_PUBLIC_URL: `http://127.0.0.1:${port}/gateway/` } });
    const apiKey = await createTenant(twoway, 'cdp', 'CDP');
    const chain = await (await fetch(`${twoway.url}/v1/ca/certificates`)).text();
    const [issuingPem, rootPem] =
      chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    writeFile(files.dir, 'issuing.pem', issuingPem ?? '');
    writeFile(files.dir, 'root.pem', rootPem ?? '');
    const csr = await makeCsr(files.dir, 'cdp', '/CN=cdp');
    const answer = await twoway.call('/v1/tenants/cdp/certificate-signing-requests', {
      method: 'POST',
      token: apiKey,
      json: { name: 'cdp', csrPem: readFileSync(csr.csr, 'utf8') },
    });
    expect(answer.status).toBe(201);
    const view = (await answer.json()) as { id: string; certificatePem: string };
    const cert = writeFile(files.dir, 'cdp.crt', view.certificatePem);
    const text = await openssl(files.dir, 'x509', '-in', cert, '-noout', '-text');
    expect(text).toMatch(
      new RegExp(
        `X509v3 CRL Distribution Points:\\s*\\n\\s*Full Name:\\s*\\n\\s*URI:http://127\\.0\\.0\\.1:${port}/gateway/v1/ca/crl\\n`,
      ),
    );

    // openssl downloads the CRL from the distribution point itself (no -CRLfile).
    const verify = () => verifyIssued(files.dir, cert, '-crl_check', '-crl_download');
    const accepted = await verify();
    expect({ code: accepted.code, out: accepted.stdout.trim() }).toEqual({ code: 0, out: `${cert}: OK` });
    const revoke = await twoway.call(`/v1/tenants/cdp/client-certificates/${view.id}/revoke`, {
      method: 'POST',
      token: apiKey,
      json: { reason: 'keyCompromise' },
    });
    expect(revoke.status).toBe(200);
    const refused = await verify();
    expect(refused.code).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
  });
});
