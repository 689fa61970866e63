import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePkcs12, makePki, type TestPki } from '../fixtures/pki.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, createTenant, uploadPkcs12 } from '../helpers/twoway.js';

/**
 * When a request started: 0 before the rotation call was sent, 1 while it was in flight, 2 after it
 * returned, 3 while the rollback call was in flight, 4 after it returned. Requests that start while a
 * call is in flight may see either version; every other phase has exactly one right answer.
 */
type Phase = 0 | 1 | 2 | 3 | 4;

interface Sample {
  phase: Phase;
  status: number;
  fingerprint: string;
}

describe('rotation under load', () => {
  let pki: TestPki;
  let upstream: MtlsServer;
  const twoway = build();
  let apiKey: string;

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    apiKey = await createTenant(twoway, 'rot', 'Rotation');
  });

  afterAll(() => upstream?.close());

  test('no request fails, and every request started after activation (or rollback) returned uses that version', async () => {
    const v1 = await pki.leaf({ cn: 'rot-v1', key: 'rsa2048' });
    const v2 = await pki.leaf({ cn: 'rot-v2', key: 'ec256' });
    const uploaded = await uploadPkcs12(
      twoway,
      'rot',
      makePkcs12(v1, [pki.intermediate], 'pw'),
      'pw',
      apiKey,
    );
    const { id } = (await uploaded.json()) as { id: string };
    await twoway.call('/v1/tenants/rot/mappings', {
      method: 'POST',
      token: apiKey,
      json: {
        name: 'm',
        service: 'api',
        url: `${upstream.url}/`,
        identityId: id,
        trustAnchorsPem: pki.root.certPem,
      },
    });

    let phase: Phase = 0;
    let stop = false;
    const samples: Sample[] = [];
    const deadline = Date.now() + 20_000;
    const worker = async () => {
      // Bounded by count and by time.
      for (let i = 0; i < 400 && !stop && Date.now() < deadline; i++) {
        const startedIn = phase;
        const response = await fetch(`${twoway.url}/v1/runtime/forward`, {
          headers: {
            authorization: `Bearer ${apiKey}`,
            'twoway-service': 'api',
            'twoway-forward-url': `${upstream.url}/r`,
          },
        });
        const echo = (await response.json()) as Echo;
        samples.push({ phase: startedIn, status: response.status, fingerprint: echo.clientFingerprint });
      }
    };
    const rotate = async () => {
      while (samples.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const p12 = makePkcs12(v2, [pki.intermediate], 'pw2', { legacy: true });
      const form = new FormData();
      form.set('password', 'pw2');
      form.set('file', new Blob([new Uint8Array(p12)]), 'v2.p12');
      phase = 1;
      const rotated = await twoway.call(`/v1/tenants/rot/identities/${id}/versions`, {
        method: 'POST',
        body: form,
        token: apiKey,
      });
      expect(rotated.status).toBe(201);
      phase = 2;
      const mark = samples.length;
      while (samples.length < mark + 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      phase = 3;
      const back = await twoway.call(`/v1/tenants/rot/identities/${id}/versions/1/activate`, {
        method: 'POST',
        token: apiKey,
      });
      expect(back.status).toBe(200);
      phase = 4;
      const mark2 = samples.length;
      while (samples.length < mark2 + 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      stop = true;
    };
    await Promise.all([rotate(), worker(), worker(), worker(), worker()]);

    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    const before = samples.filter((s) => s.phase === 0);
    const during = samples.filter((s) => s.phase === 2);
    const after = samples.filter((s) => s.phase === 4);
    const inFlight = samples.filter((s) => s.phase === 1 || s.phase === 3);
    const known = new Set([v1.fingerprintSha256, v2.fingerprintSha256]);
    expect(inFlight.filter((s) => !known.has(s.fingerprint))).toEqual([]);
    expect(before.length).toBeGreaterThanOrEqual(60);
    expect(during.length).toBeGreaterThanOrEqual(50);
    expect(after.length).toBeGreaterThanOrEqual(50);
    const wrong = (list: Sample[], want: string) => list.filter((s) => s.fingerprint !== want);
    expect(wrong(before, v1.fingerprintSha256)).toEqual([]);
    expect(wrong(during, v2.fingerprintSha256)).toEqual([]);
    expect(wrong(after, v1.fingerprintSha256)).toEqual([]);
    // The superseded versions' pools closed once their in-flight requests finished.
    const deadlineIdle = Date.now() + 5_000;
    while (twoway.dispatchers.drainingCount > 0 && Date.now() < deadlineIdle)
      await new Promise((r) => setTimeout(r, 20));
    expect({ live: twoway.dispatchers.size, draining: twoway.dispatchers.drainingCount }).toEqual({
      live: 1,
      draining: 0,
    });
  });
});
