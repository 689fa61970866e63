/**
 * The tenant's default identity ("domain level") under load, on SQLite and PostgreSQL: while
 * forwards through a connection with the switch on keep going, the default identity gets a new
 * version, then another identity becomes the default. Every request succeeds, and each change is
 * presented from the next request on.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { makePki, type TestPki } from '../fixtures/pki.js';
import { type ApiServer, startApiServer } from '../helpers/api-server.js';
import { appBackends } from '../helpers/backends.js';
import type { Echo } from '../helpers/mtls-server.js';
import { build, createConnection, createTenant, uploadIdentity } from '../helpers/twoway.js';

const backends = await appBackends();

/** Parallel callers, each sending at most this many requests: a bounded load. */
const WORKERS = 6;
const REQUESTS_PER_WORKER = 120;

describe.each(backends)('default identity rotation under load on $name', (backend) => {
  const twoway = build({ backend });
  let pki: TestPki;
  let api: ApiServer;

  beforeAll(async () => {
    pki = await makePki();
    api = await startApiServer(pki, { clientCertificate: true });
  });

  afterAll(() => api?.close());

  test('a new version of the default, then a new default: zero failed requests, each used from the next request', async () => {
    const key = await createTenant(twoway, 'acme');
    const first = await pki.leaf({ cn: 'default-v1' });
    const second = await pki.leaf({ cn: 'default-v2' });
    const other = await pki.leaf({ cn: 'other-default' });
    const identity = await uploadIdentity(twoway, pki, 'acme', key, first, 'default');
    const otherIdentity = await uploadIdentity(twoway, pki, 'acme', key, other, 'other');
    await createConnection(twoway, 'acme', key, {
      name: 'api',
      baseUrl: api.url,
      clientCertificate: { enabled: true },
      trustAnchorsPem: pki.root.certPem,
    });

    const call = async (): Promise<{ status: number; fingerprint: string }> => {
      const response = await fetch(`${twoway.url}/v1/runtime/forward`, {
        headers: { authorization: `Bearer ${key}`, 'twoway-connection': 'api', 'twoway-forward-url': 'ping' },
      });
      const text = await response.text();
      return {
        status: response.status,
        fingerprint: response.status === 200 ? (JSON.parse(text) as Echo).clientFingerprint : text,
      };
    };

    let sent = 0;
    const failures: string[] = [];
    const seen = new Set<string>();
    const waiters: { at: number; resolve: () => void }[] = [];
    const worker = async () => {
      for (let i = 0; i < REQUESTS_PER_WORKER; i++) {
        const { status, fingerprint } = await call();
        if (status !== 200) failures.push(`${status} ${fingerprint}`);
        else seen.add(fingerprint);
        sent += 1;
        for (const w of waiters.filter((x) => sent >= x.at)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    };
    const reached = (at: number) =>
      new Promise<void>((resolve) => (sent >= at ? resolve() : waiters.push({ at, resolve })));
    const load = Promise.all(Array.from({ length: WORKERS }, worker));

    await reached(100);
    const rotated = await twoway.call(`/v1/tenants/acme/identities/${identity}/versions`, {
      method: 'POST',
      token: key,
      json: {
        certificatePem: second.certPem,
        privateKeyPem: second.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(rotated.status).toBe(201);
    expect((await call()).fingerprint).toBe(second.fingerprintSha256);

    await reached(350);
    const moved = await twoway.call('/v1/tenants/acme', {
      method: 'PATCH',
      token: key,
      json: { defaultIdentityId: otherIdentity },
    });
    expect(moved.status).toBe(200);
    expect((await call()).fingerprint).toBe(other.fingerprintSha256);

    await load;
    expect(failures).toEqual([]);
    expect(sent).toBe(WORKERS * REQUESTS_PER_WORKER);
    expect(seen).toEqual(
      new Set([first.fingerprintSha256, second.fingerprintSha256, other.fingerprintSha256]),
    );
  });
});
