import { describe, expect, test } from 'vitest';
import { DAY_MS as day } from '../../../src/certificates/index.js';
import { platformIssuedLookup, refusalFor } from '../../../src/edge/admission.js';
import { ClientCertificateIndex } from '../../../src/edge/certificate-index.js';
import type { ClientCertificate, ClientCertificateIndexRow } from '../../../src/store/index.js';

/** An in-memory change log standing in for the store. */
function fakeStore(rows: ClientCertificateIndexRow[]) {
  const calls: number[] = [];
  return {
    calls,
    rows,
    async listClientCertificateChanges(after: number, options?: { includeDeleted?: boolean }) {
      calls.push(after);
      return rows
        .filter((r) => r.revision > after && (options?.includeDeleted !== false || !r.deletedAt))
        .sort((a, b) => a.revision - b.revision);
    },
  };
}

function row(
  id: string,
  fingerprint: string,
  revision: number,
  extra: Partial<ClientCertificateIndexRow> = {},
) {
  return {
    id,
    tenantId: 'acme',
    fingerprintSha256: fingerprint,
    notBefore: new Date(0),
    notAfter: new Date(10 * day),
    revision,
    ...extra,
  };
}

describe('client certificate index', () => {
  test('loads live certificates, then applies later changes in revision order', async () => {
    const store = fakeStore([row('c1', 'f1', 1), row('c2', 'f2', 2, { deletedAt: new Date(1) })]);
    const index = new ClientCertificateIndex(store);
    await index.load();
    expect(index.size).toBe(1);
    expect(index.get('f1', 'acme')?.id).toBe('c1');

    store.rows.push(row('c1', 'f1', 3, { revokedAt: new Date(2) }), row('c3', 'f3', 4));
    await index.sync();
    expect(index.get('f1', 'acme')?.revoked).toBe(true);
    expect(index.get('f3', 'acme')?.tenantId).toBe('acme');
    // The full load skipped the deleted row (revision 2), so the next pass asks from revision 1.
    expect(store.calls.at(-1)).toBe(1);
  });

  test('a deleted older row of a fingerprint does not remove a newer registration of it', async () => {
    const store = fakeStore([
      row('old', 'f', 1),
      row('old', 'f', 2, { deletedAt: new Date(1) }),
      row('new', 'f', 3),
    ]);
    const index = new ClientCertificateIndex(store);
    await index.sync();
    expect(index.get('f', 'acme')?.id).toBe('new');
    store.rows.push(row('old', 'f', 4, { deletedAt: new Date(1) }));
    await index.sync();
    expect(index.get('f', 'acme')?.id).toBe('new');
  });

  test('several tenants registering one certificate get an entry each; revoking or deleting one leaves the others', async () => {
    const store = fakeStore([
      row('a1', 'shared', 1, { tenantId: 'tenant-a' }),
      row('b1', 'shared', 2, { tenantId: 'tenant-b' }),
    ]);
    const index = new ClientCertificateIndex(store);
    await index.load();
    expect(index.size).toBe(2);
    expect(index.has('shared')).toBe(true);
    expect(index.get('shared', 'tenant-a')?.id).toBe('a1');
    expect(index.get('shared', 'tenant-b')?.id).toBe('b1');
    expect(index.get('shared', 'tenant-c')).toBeUndefined();

    store.rows.push(row('a1', 'shared', 3, { tenantId: 'tenant-a', revokedAt: new Date(1) }));
    await index.sync();
    expect(index.get('shared', 'tenant-a')?.revoked).toBe(true);
    expect(index.get('shared', 'tenant-b')?.revoked).toBe(false);

    store.rows.push(row('b1', 'shared', 4, { tenantId: 'tenant-b', deletedAt: new Date(2) }));
    await index.sync();
    expect(index.get('shared', 'tenant-b')).toBeUndefined();
    expect(index.get('shared', 'tenant-a')?.id).toBe('a1');
    expect(index.size).toBe(1);
    store.rows.push(row('a1', 'shared', 5, { tenantId: 'tenant-a', deletedAt: new Date(3) }));
    await index.sync();
    expect(index.has('shared')).toBe(false);
    expect(index.size).toBe(0);
  });

  test('concurrent syncs coalesce, and a sync called during a pass runs another pass after it', async () => {
    const store = fakeStore([row('c1', 'f1', 1)]);
    const index = new ClientCertificateIndex(store);
    const first = index.sync();
    store.rows.push(row('c2', 'f2', 2));
    const second = index.sync();
    const third = index.sync();
    expect(second).toBe(third);
    await Promise.all([first, second]);
    expect(index.get('f2', 'acme')).toBeDefined();
    expect(store.calls.length).toBe(2);
  });

  test('refusalFor: unknown, revoked, expired after notAfter (inclusive), not yet valid', () => {
    const entry = {
      id: 'c',
      tenantId: 'acme',
      fingerprintSha256: 'f',
      notBeforeMs: 1_000,
      notAfterMs: 2_000,
      revoked: false,
    };
    expect(refusalFor(undefined, 1_500)).toBe('client_certificate_unknown');
    expect(refusalFor({ ...entry, revoked: true }, 1_500)).toBe('client_certificate_revoked');
    expect(refusalFor(entry, 2_000)).toBeNull();
    expect(refusalFor(entry, 2_001)).toBe('client_certificate_expired');
    expect(refusalFor(entry, 999)).toBe('client_certificate_not_yet_valid');
    expect(refusalFor(entry, 1_000)).toBeNull();
  });
});

describe('platform-issued fallback lookup', () => {
  const stored = (tenantId: string, san: string, source: 'issued' | 'uploaded' = 'issued') =>
    ({ tenantId, source, summary: { subjectAltNames: [san] } }) as unknown as ClientCertificate;

  test('only certificates the platform CA issued reach the store, and their SAN must name the stored tenant', async () => {
    const store = fakeStore([row('c1', 'f1', 1)]);
    const index = new ClientCertificateIndex(store);
    const lookups: string[] = [];
    let issued = false;
    let found: ClientCertificate | undefined;
    const lookup = platformIssuedLookup({
      issuedByPlatformCa: async () => issued,
      store: {
        async findClientCertificatesByFingerprint(fingerprint: string) {
          lookups.push(fingerprint);
          return found === undefined ? [] : [found];
        },
      },
      index,
    });
    const cert = {} as Parameters<typeof lookup>[0];
    expect(await lookup(cert, 'f1')).toBeUndefined();
    expect(lookups).toEqual([]);

    issued = true;
    found = stored('acme', 'URI:urn:twoway:tenant:other');
    expect(await lookup(cert, 'f1')).toBeUndefined();
    found = stored('acme', 'URI:urn:twoway:tenant:acme', 'uploaded');
    expect(await lookup(cert, 'f1')).toBeUndefined();
    found = stored('acme', 'URI:urn:twoway:tenant:acme');
    expect((await lookup(cert, 'f1'))?.id).toBe('c1');
    expect(lookups).toEqual(['f1', 'f1', 'f1']);
  });
});
