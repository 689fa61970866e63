import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type TestPki, makePkcs12, makePki } from '../fixtures/pki.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { type TestTwoway, startTestTwoway, uploadPkcs12 } from '../helpers/twoway.js';

interface Sample {
  startedAfterActivation: boolean;
  startedAfterRollback: boolean;
  status: number;
  fingerprint: string;
}

describe('rotation under load', () => {
  let pki: TestPki;
  let upstream: MtlsServer;
  let twoway: TestTwoway;
  let apiKey: string;

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    twoway = await startTestTwoway();
    const created = await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'rot', name: 'Rotation' } });
    apiKey = ((await created.json()) as { apiKey: string }).apiKey;
  });

  afterAll(async () => {
    await twoway?.close();
    await upstream?.close();
  });

  test('no request fails, and every request started after activation (or rollback) returned uses that version', async () => {
    const v1 = await pki.leaf({ cn: 'rot-v1', key: 'rsa2048' });
    const v2 = await pki.leaf({ cn: 'rot-v2', key: 'ec256' });
    const uploaded = await uploadPkcs12(twoway, 'rot', makePkcs12(v1, [pki.intermediate], 'pw'), 'pw', apiKey);
    const { id } = (await uploaded.json()) as { id: string };
    await twoway.call('/v1/tenants/rot/mappings', {
      method: 'POST',
      token: apiKey,
      json: { name: 'm', service: 'api', url: `${upstream.url}/`, identityId: id, trustAnchorsPem: pki.root.certPem },
    });

    let activated = false;
    let rolledBack = false;
    let stop = false;
    const samples: Sample[] = [];
    const deadline = Date.now() + 20_000;
    const worker = async () => {
      // Bounded by count and by time.
      for (let i = 0; i < 400 && !stop && Date.now() < deadline; i++) {
        const startedAfterActivation = activated;
        const startedAfterRollback = rolledBack;
        const response = await fetch(`${twoway.url}/v1/runtime/forward`, {
          headers: { authorization: `Bearer ${apiKey}`, 'twoway-service': 'api', 'twoway-forward-url': `${upstream.url}/r` },
        });
        const echo = (await response.json()) as Echo;
        samples.push({ startedAfterActivation, startedAfterRollback, status: response.status, fingerprint: echo.clientFingerprint });
      }
    };
    const rotate = async () => {
      while (samples.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const p12 = makePkcs12(v2, [pki.intermediate], 'pw2', { legacy: true });
      const form = new FormData();
      form.set('password', 'pw2');
      form.set('file', new Blob([p12]), 'v2.p12');
      const rotated = await twoway.call(`/v1/tenants/rot/identities/${id}/versions`, { method: 'POST', body: form, token: apiKey });
      expect(rotated.status).toBe(201);
      activated = true;
      const mark = samples.length;
      while (samples.length < mark + 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const back = await twoway.call(`/v1/tenants/rot/identities/${id}/versions/1/activate`, { method: 'POST', token: apiKey });
      expect(back.status).toBe(200);
      rolledBack = true;
      const mark2 = samples.length;
      while (samples.length < mark2 + 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      stop = true;
    };
    await Promise.all([rotate(), worker(), worker(), worker(), worker()]);

    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    const before = samples.filter((s) => !s.startedAfterActivation);
    const during = samples.filter((s) => s.startedAfterActivation && !s.startedAfterRollback);
    const after = samples.filter((s) => s.startedAfterRollback);
    expect(before.length).toBeGreaterThanOrEqual(60);
    expect(during.length).toBeGreaterThanOrEqual(60);
    expect(after.length).toBeGreaterThanOrEqual(60);
    expect(before.every((s) => s.fingerprint === v1.fingerprintSha256)).toBe(true);
    expect(during.every((s) => s.fingerprint === v2.fingerprintSha256)).toBe(true);
    expect(after.every((s) => s.fingerprint === v1.fingerprintSha256)).toBe(true);
  });
});
