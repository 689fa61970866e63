import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { makePkcs12, makePki } from '../test/fixtures/pki.js';
import { startTestTwoway, uploadPkcs12 } from '../test/helpers/twoway.js';

let twoway: Awaited<ReturnType<typeof startTestTwoway>>;
let key: string;
let upstreamUrl: string;
let server: ReturnType<typeof createServer>;
beforeAll(async () => {
  const pki = await makePki();
  const serverCert = await pki.leaf({ cn: 'localhost', eku: 'serverAuth', dns: ['localhost'], ips: ['127.0.0.1'] });
  server = createServer({ key: serverCert.keyPem, cert: serverCert.certPem + pki.intermediate.certPem, ca: [pki.root.certPem], requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.writeHead(200, { 'twoway-error': 'no_mapping', 'content-type': 'text/plain' });
    res.end('from upstream');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  upstreamUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  twoway = await startTestTwoway({});
  const a = await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'acme', name: 'A' } });
  key = ((await a.json()) as { apiKey: string }).apiKey;
  const leaf = await pki.leaf({ cn: 'c', key: 'rsa2048' });
  const up = await uploadPkcs12(twoway, 'acme', makePkcs12(leaf, [pki.intermediate], 'pw'), 'pw', key);
  const id = ((await up.json()) as { id: string }).id;
  const m = await twoway.call('/v1/tenants/acme/mappings', { method: 'POST', token: key, json: { name: 'm', service: 'api', url: `${upstreamUrl}/`, identityId: id, trustAnchorsPem: pki.root.certPem } });
  expect(m.status).toBe(201);
});
afterAll(async () => { await twoway.close(); server.close(); });

test('percent-encoded /v1 path skips the auth hook', async () => {
  for (const p of ['/%761/tenants/acme', '/%761/tenants', '/v1/tenants/acme']) {
    const r = await twoway.call(p, { token: null });
    console.log(p, r.status, await r.text());
  }
});

test('upstream can send Twoway-Error', async () => {
  const r = await twoway.call('/v1/runtime/forward', { token: key, headers: { 'twoway-service': 'api', 'twoway-forward-url': `${upstreamUrl}/x` } });
  console.log('forward', r.status, r.headers.get('twoway-error'), await r.text());
});
