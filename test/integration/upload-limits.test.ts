/**
 * Hostile uploads stay bounded over HTTP: TWOWAY_MAX_UPLOAD_BYTES bounds the whole multipart body
 * (not each part), and the red-team key flood is refused by count, for identities, client
 * certificates and the certificate tester alike.
 */
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ed25519KeyFlood, makePki } from '../fixtures/pki.js';
import { type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

const MB = 1_000_000;
const ROUTES = {
  identities: '/v1/tenants/acme/identities',
  'client certificates': '/v1/tenants/acme/client-certificates',
  'the certificate tester': '/v1/tenants/acme/identity-tests',
};

/**
 * The red-team body of issue 11: four 1 MB file parts and fifteen 1 MB text fields (19 MB), each
 * part within the plugin's per-part limits (1 MiB, 4 files, 16 fields, 20 parts).
 */
function floodForm(url?: string): FormData {
  const form = new FormData();
  for (const name of ['file', 'certificate', 'privateKey', 'chain']) {
    form.set(name, new Blob([new Uint8Array(MB).fill(0x30)]), `${name}.bin`);
  }
  for (let i = 0; i < 15; i += 1) form.set(`field${i}`, 'x'.repeat(MB));
  if (url) form.set('url', url);
  return form;
}

/** Sends `form` with chunked transfer encoding (no Content-Length to refuse it by). */
async function sendChunked(
  twoway: TestTwoway,
  path: string,
  form: FormData,
): Promise<{ status: number; body: { code?: string } }> {
  const encoded = new Response(form);
  const body = Buffer.from(await encoded.arrayBuffer());
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${twoway.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-operator-token-0123456789',
        'content-type': encoded.headers.get('content-type') ?? '',
        'transfer-encoding': 'chunked',
      },
    });
    request.on('response', (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) }));
    });
    // The server may answer and close while the body is still being sent.
    request.on('error', (err) => (request.writableEnded ? undefined : reject(err)));
    const chunks = function* () {
      for (let offset = 0; offset < body.length; offset += 64 * 1024) {
        yield body.subarray(offset, offset + 64 * 1024);
      }
    };
    Readable.from(chunks()).pipe(request);
  });
}

describe('upload limits over HTTP', () => {
  let twoway: TestTwoway;
  let upstream: MtlsServer;

  beforeAll(async () => {
    upstream = await startMtlsServer(await makePki('Limits Upstream'));
    twoway = await startTestTwoway();
    const created = await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'acme', name: 'Acme' } });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await twoway?.close();
    await upstream?.close();
  });

  test.each(Object.entries(ROUTES))(
    'TWOWAY_MAX_UPLOAD_BYTES bounds the whole multipart body of %s: 413, with or without Content-Length',
    async (_name, path) => {
      const url = `${upstream.url}/limits`;
      const declared = await twoway.call(path, { method: 'POST', body: floodForm(url) });
      expect(declared.status).toBe(413);
      expect(((await declared.json()) as { code: string }).code).toBe('payload_too_large');
      const chunked = await sendChunked(twoway, path, floodForm(url));
      expect({ status: chunked.status, code: chunked.body.code }).toEqual({
        status: 413,
        code: 'payload_too_large',
      });
      expect((await twoway.store.listIdentities('acme', { limit: 100 })).items).toEqual([]);
    },
  );

  test('the red-team key flood is multiple_private_keys for an identity and in the tester report', async () => {
    const flood = ed25519KeyFlood(900_000);
    const identity = await twoway.call(ROUTES.identities, {
      method: 'POST',
      json: { name: 'flood', privateKeyPem: flood.toString() },
    });
    expect(identity.status).toBe(422);
    expect(((await identity.json()) as { code: string }).code).toBe('multiple_private_keys');
    const tested = await twoway.call(ROUTES['the certificate tester'], {
      method: 'POST',
      json: { url: `${upstream.url}/limits`, privateKeyPem: flood.toString() },
    });
    expect(tested.status).toBe(200);
    const report = (await tested.json()) as { certificate: { ok: boolean; error?: { code: string } } };
    expect(report.certificate).toMatchObject({ ok: false, error: { code: 'multiple_private_keys' } });
  });
});
