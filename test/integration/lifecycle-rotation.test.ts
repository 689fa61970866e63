import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type CertKey, makePki, type TestPki } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { DAY, ManualClock } from '../helpers/lifecycle.js';
import { type Echo, type MtlsServer, startMtlsServer } from '../helpers/mtls-server.js';
import { build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();
const HOUR = 3_600_000;

interface Sample {
  startedAt: number;
  endedAt: number;
  status: number;
  fingerprint: string;
}

interface IdentityView {
  activeVersion: number;
  versions: { version: number; activatedAt?: string; activateAt?: string }[];
}

describe.each(backends)('zero-downtime rotation on $name', (backend) => {
  let pki: TestPki;
  let upstream: MtlsServer;
  let apiKey: string;
  const clock = new ManualClock();
  const twoway = build({ backend, clock });

  beforeAll(async () => {
    pki = await makePki();
    upstream = await startMtlsServer(pki);
    apiKey = await createTenant(twoway, 'rot', 'Rot');
  });

  afterAll(() => upstream?.close());

  const pemOf = (leaf: CertKey) => ({
    certificatePem: leaf.certPem,
    privateKeyPem: leaf.keyPem,
    chainPem: pki.intermediate.certPem,
  });

  async function call(path: string, init: { method: string; json?: unknown }): Promise<IdentityView> {
    const response = await twoway.call(path, { ...init, token: apiKey });
    const text = await response.text();
    expect(response.status, text).toBeLessThan(300);
    return JSON.parse(text) as IdentityView;
  }

  test('manual activation, rollback and activateAt under keep-alive load: no failure, the next request uses the new version', async () => {
    const [v1, v2, v3] = await Promise.all([
      pki.leaf({ cn: 'rot-v1' }),
      pki.leaf({ cn: 'rot-v2', key: 'rsa2048' }),
      pki.leaf({ cn: 'rot-v3', key: 'ec384' }),
    ]);
    const created = await twoway.call('/v1/tenants/rot/identities', {
      method: 'POST',
      token: apiKey,
      json: { name: 'rotating', ...pemOf(v1) },
    });
    const { id } = (await created.json()) as { id: string };
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

    // Four keep-alive connections to Twoway, as a platform's HTTP client keeps them.
    const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000, pipelining: 1 });
    const samples: Sample[] = [];
    let stop = false;
    const deadline = Date.now() + 25_000;
    const worker = async () => {
      for (let i = 0; i < 600 && !stop && Date.now() < deadline; i++) {
        const startedAt = performance.now();
        const response = await request(`${twoway.url}/v1/runtime/forward`, {
          dispatcher: agent,
          headers: {
            authorization: `Bearer ${apiKey}`,
            'twoway-service': 'api',
            'twoway-forward-url': `${upstream.url}/load`,
          },
        });
        const text = await response.body.text();
        const fingerprint = response.statusCode === 200 ? (JSON.parse(text) as Echo).clientFingerprint : text;
        samples.push({ startedAt, endedAt: performance.now(), status: response.statusCode, fingerprint });
      }
    };
    const settle = async (count = 40) => {
      const mark = samples.length;
      while (samples.length < mark + count && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
    };
    /**
     * Each change: when its call was sent and when it returned, and the certificate every request
     * that starts after it returned (and before the next change is sent) must present.
     */
    const changes: { name: string; sentAt: number; returnedAt: number; fingerprint: string }[] = [];
    const change = async (name: string, fingerprint: string, work: () => Promise<void>) => {
      const sentAt = performance.now();
      await work();
      changes.push({ name, sentAt, returnedAt: performance.now(), fingerprint });
      await settle();
    };
    const steps = async () => {
      await settle();
      // A version uploaded with activate: false changes nothing.
      await change('uploaded v2 inactive', v1.fingerprintSha256, async () => {
        const view = await call(`/v1/tenants/rot/identities/${id}/versions`, {
          method: 'POST',
          json: { ...pemOf(v2), activate: false },
        });
        expect(view.activeVersion).toBe(1);
      });
      await change('activated v2 by hand', v2.fingerprintSha256, async () => {
        expect(
          (await call(`/v1/tenants/rot/identities/${id}/versions/2/activate`, { method: 'POST' }))
            .activeVersion,
        ).toBe(2);
      });
      await change('rolled back to v1', v1.fingerprintSha256, async () => {
        expect(
          (await call(`/v1/tenants/rot/identities/${id}/versions/1/activate`, { method: 'POST' }))
            .activeVersion,
        ).toBe(1);
      });
      await change('scheduled v3 for an hour later', v1.fingerprintSha256, async () => {
        const activateAt = new Date(clock.now().getTime() + HOUR).toISOString();
        const view = await call(`/v1/tenants/rot/identities/${id}/versions`, {
          method: 'POST',
          json: { ...pemOf(v3), activateAt },
        });
        expect(view.activeVersion).toBe(1);
        expect(view.versions.find((v) => v.version === 3)).toMatchObject({ activateAt });
        expect(view.versions.find((v) => v.version === 3)?.activatedAt).toBeUndefined();
        // Not due yet: a scheduler run changes nothing.
        await twoway.lifecycle.scheduler.runOnce();
      });
      await change('the scheduler activated v3 when due', v3.fingerprintSha256, async () => {
        clock.advance(HOUR);
        await twoway.lifecycle.scheduler.runOnce();
      });
      stop = true;
    };
    await Promise.all([steps(), worker(), worker(), worker(), worker()]);
    await agent.close();

    expect(samples.filter((s) => s.status !== 200)).toEqual([]);
    expect(changes.map((c) => c.name)).toHaveLength(5);
    for (const [i, c] of changes.entries()) {
      const nextSent = changes[i + 1]?.sentAt ?? Number.POSITIVE_INFINITY;
      // Started after this change returned, and done before the next one was sent.
      const after = samples.filter((s) => s.startedAt > c.returnedAt && s.endedAt < nextSent);
      expect(after.length, c.name).toBeGreaterThanOrEqual(20);
      expect(
        after.filter((s) => s.fingerprint !== c.fingerprint),
        c.name,
      ).toEqual([]);
    }
    // While a call was in flight, either version is fine, but never anything else.
    const known = new Set([v1, v2, v3].map((v) => v.fingerprintSha256));
    expect(samples.filter((s) => !known.has(s.fingerprint))).toEqual([]);

    // The scheduler's activation is in the audit log, by the scheduler.
    const audit = (await (
      await twoway.call(`/v1/tenants/rot/audit-events?objectId=${id}&action=identity.activate_version`)
    ).json()) as { items: { actor: string; detail: { version: number } }[] };
    expect(audit.items.map((e) => [e.actor, e.detail.version])).toEqual([
      ['scheduler', 3],
      [expect.stringMatching(/^api-key:key_/), 1],
      [expect.stringMatching(/^api-key:key_/), 2],
    ]);
    // Superseded pools drained and closed.
    const idle = Date.now() + 5_000;
    while (twoway.dispatchers.drainingCount > 0 && Date.now() < idle)
      await new Promise((r) => setTimeout(r, 20));
    expect({ live: twoway.dispatchers.size, draining: twoway.dispatchers.drainingCount }).toEqual({
      live: 1,
      draining: 0,
    });
  });

  test('activateAt is checked against the certificate, and a scheduled activation can be cancelled', async () => {
    const v1 = await pki.leaf({ cn: 'sched-v1' });
    const shortLived = await pki.leaf({
      cn: 'sched-short',
      notAfter: new Date(clock.now().getTime() + 2 * DAY),
    });
    const v3 = await pki.leaf({ cn: 'sched-v3' });
    const created = await twoway.call('/v1/tenants/rot/identities', {
      method: 'POST',
      token: apiKey,
      json: { name: 'scheduled', ...pemOf(v1) },
    });
    const { id } = (await created.json()) as { id: string };
    const late = await twoway.call(`/v1/tenants/rot/identities/${id}/versions`, {
      method: 'POST',
      token: apiKey,
      json: { ...pemOf(shortLived), activateAt: new Date(clock.now().getTime() + 3 * DAY).toISOString() },
    });
    expect(late.status).toBe(409);
    expect(((await late.json()) as { code: string }).code).toBe('version_not_usable');
    const both = await twoway.call(`/v1/tenants/rot/identities/${id}/versions`, {
      method: 'POST',
      token: apiKey,
      json: { ...pemOf(v3), activate: true, activateAt: new Date(clock.now().getTime() + DAY).toISOString() },
    });
    expect(both.status).toBe(400);
    const bad = await twoway.call(`/v1/tenants/rot/identities/${id}/versions`, {
      method: 'POST',
      token: apiKey,
      json: { ...pemOf(v3), activateAt: 'tomorrow' },
    });
    expect(bad.status).toBe(400);

    const scheduled = await call(`/v1/tenants/rot/identities/${id}/versions`, {
      method: 'POST',
      json: { ...pemOf(v3), activateAt: new Date(clock.now().getTime() + DAY).toISOString() },
    });
    const version = Math.max(...scheduled.versions.map((v) => v.version));
    const cancelled = await call(`/v1/tenants/rot/identities/${id}/versions/${version}/activate-at`, {
      method: 'DELETE',
    });
    expect(cancelled.versions.find((v) => v.version === version)?.activateAt).toBeUndefined();
    const again = await twoway.call(`/v1/tenants/rot/identities/${id}/versions/${version}/activate-at`, {
      method: 'DELETE',
      token: apiKey,
    });
    expect(again.status).toBe(404);
    clock.advance(2 * DAY);
    await twoway.lifecycle.scheduler.runOnce();
    expect((await call(`/v1/tenants/rot/identities/${id}`, { method: 'GET' })).activeVersion).toBe(1);

    // An activateAt in the past activates at once.
    const now = await call(`/v1/tenants/rot/identities/${id}/versions`, {
      method: 'POST',
      json: {
        ...pemOf(await pki.leaf({ cn: 'sched-now' })),
        activateAt: new Date(clock.now().getTime() - 1).toISOString(),
      },
    });
    expect(now.activeVersion).toBe(Math.max(...now.versions.map((v) => v.version)));
  });
});
