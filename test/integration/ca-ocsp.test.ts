/**
 * The platform CA's OCSP responder (RFC 6960) as relying parties use it: `openssl ocsp` with the
 * URL the issued certificate names in its Authority Information Access.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { makeByoc, makeCsr, openssl, run, writeFile } from '../helpers/edge-clients.js';
import { build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();

/** A port free a moment ago: Twoway's address must be known before it starts (TWOWAY_PUBLIC_URL). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

describe.each(backends)('OCSP responder on $name', (backend) => {
  const files = tempDir('twoway-ocsp-');
  let publicUrl = '';
  const twoway = build({
    backend,
    env: async () => {
      const port = await freePort();
      publicUrl = `http://127.0.0.1:${port}`;
      return {
        TWOWAY_HTTP_PORT: String(port),
        TWOWAY_PUBLIC_URL: publicUrl,
        TWOWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      };
    },
  });
  let apiKey: string;
  let issued: { id: string; cert: string };

  beforeAll(async () => {
    apiKey = await createTenant(twoway, 'acme');
    const chain = await (await fetch(`${twoway.url}/v1/ca/certificates`)).text();
    const [issuing, root] =
      chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    writeFile(files.dir, 'issuing.pem', issuing ?? '');
    writeFile(files.dir, 'root.pem', root ?? '');
    const csr = await makeCsr(files.dir, 'laptop', '/CN=laptop');
    const answer = await twoway.call('/v1/tenants/acme/certificate-signing-requests', {
      method: 'POST',
      token: apiKey,
      json: { name: 'laptop', csrPem: readFileSync(csr.csr, 'utf8') },
    });
    expect(answer.status).toBe(201);
    const view = (await answer.json()) as { id: string; certificatePem: string };
    issued = { id: view.id, cert: writeFile(files.dir, 'laptop.crt', view.certificatePem) };
  });

  afterAll(() => files.cleanup());

  /** `openssl ocsp` against the responder; its stdout and stderr together. */
  async function ocsp(...args: string[]): Promise<string> {
    const result = await run(
      'openssl',
      ['ocsp', '-issuer', 'issuing.pem', '-CAfile', 'root.pem', '-url', `${publicUrl}/v1/ca/ocsp`, ...args],
      { cwd: files.dir },
    );
    expect(result.code, result.stderr).toBe(0);
    return result.stdout + result.stderr;
  }

  test('issued certificates name the responder in their Authority Information Access', async () => {
    const text = await openssl(files.dir, 'x509', '-in', issued.cert, '-noout', '-ocsp_uri');
    expect(text.trim()).toBe(`${publicUrl}/v1/ca/ocsp`);
  });

  test('openssl ocsp: good, then revoked with time and reason after a revocation; the nonce is echoed', async () => {
    const before = await ocsp('-cert', 'laptop.crt', '-resp_text');
    expect(before).toContain('Response verify OK');
    expect(before).toMatch(/laptop\.crt: good\n\s+This Update: .+\n\s+Next Update: /);
    expect(before).toContain('OCSP Nonce');
    expect(before).not.toContain('WARNING: no nonce');

    const revoked = await twoway.call(`/v1/tenants/acme/client-certificates/${issued.id}/revoke`, {
      method: 'POST',
      token: apiKey,
      json: { reason: 'keyCompromise' },
    });
    expect(revoked.status).toBe(200);
    const after = await ocsp('-cert', 'laptop.crt');
    expect(after).toContain('Response verify OK');
    expect(after).toMatch(/laptop\.crt: revoked\n[\s\S]*Reason: keyCompromise\n\s+Revocation Time: /);
  });

  test('a serial the CA never issued, and a certificate of another issuer, are unknown', async () => {
    expect(await ocsp('-serial', '0x1234')).toMatch(/0x1234: unknown/);
    const byoc = await makeByoc(files.dir, 'byoc', 'someone-else');
    const other = await run(
      'openssl',
      [
        'ocsp',
        '-issuer',
        byoc.cert,
        '-cert',
        byoc.cert,
        '-CAfile',
        'root.pem',
        '-url',
        `${publicUrl}/v1/ca/ocsp`,
      ],
      { cwd: files.dir },
    );
    expect(other.stdout).toContain(': unknown');
  });

  test('GET with the base64 request answers as POST; malformed requests get malformedRequest', async () => {
    await ocsp('-cert', 'laptop.crt', '-no_nonce', '-reqout', 'request.der');
    const request = readFileSync(join(files.dir, 'request.der'));
    const byGet = await fetch(`${twoway.url}/v1/ca/ocsp/${encodeURIComponent(request.toString('base64'))}`);
    expect(byGet.status).toBe(200);
    expect(byGet.headers.get('content-type')).toBe('application/ocsp-response');
    writeFile(files.dir, 'get.der', Buffer.from(await byGet.arrayBuffer()));
    const text = await openssl(files.dir, 'ocsp', '-respin', 'get.der', '-resp_text', '-noverify');
    expect(text).toContain('OCSP Response Status: successful');
    expect(text).toContain('Cert Status: revoked');

    // OCSPResponse { responseStatus malformedRequest(1) }, no responseBytes (RFC 6960 §4.2.1).
    const malformed = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
    for (const body of [Buffer.from('not DER at all'), Buffer.from([0x30, 0x00]), request.subarray(0, 20)]) {
      const byPost = await fetch(`${twoway.url}/v1/ca/ocsp`, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request' },
        body,
      });
      expect(byPost.status).toBe(200);
      expect(Buffer.from(await byPost.arrayBuffer())).toEqual(malformed);
    }
    const badGet = await fetch(`${twoway.url}/v1/ca/ocsp/${encodeURIComponent('%%%not base64')}`);
    expect(Buffer.from(await badGet.arrayBuffer())).toEqual(malformed);
  });
});
