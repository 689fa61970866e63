/**
 * Every list pages: `limit` (default 100, 1..1000) and an opaque keyset `cursor`. Walks each list to
 * the end with limit 1, 2 and the default, on SQLite and PostgreSQL, while items are being added
 * (with the same `createdAt` as others, so the id tie-break is what keeps the order total); refuses
 * garbage, foreign and tampered cursors; and keeps a page of large mappings to a few MiB.
 */
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import type { CertificateSummary, IdentityVersion, Mapping, Store } from '../../src/store/index.js';
import { type CertKey, makeRoot } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { snapshotDatabase } from '../helpers/lifecycle.js';
import { type BuiltTwoway, build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
let counter = 0;
/** A fresh id; random, so ids do not sort in creation order. */
function uid(prefix: string): string {
  counter += 1;
  return `${prefix}_${randomBytes(6).toString('hex')}${counter}`;
}
/** Three items share each instant: the id has to break the ties. */
const instant = (i: number) => new Date(T0 + Math.floor(i / 3) * 1000);

function summary(): CertificateSummary {
  return {
    subject: 'CN=paging',
    issuer: 'CN=Paging CA',
    serialNumber: randomBytes(8).toString('hex').toUpperCase(),
    fingerprintSha256: randomBytes(32).toString('hex'),
    spkiSha256: randomBytes(32).toString('hex'),
    notBefore: new Date(T0 - 86_400_000),
    notAfter: new Date(T0 + 300 * 86_400_000),
    keyType: 'EC',
    keySize: 256,
    curve: 'P-256',
    signatureAlgorithm: 'ecdsa-with-SHA256',
    subjectAltNames: [],
  };
}

function version(tenantId: string, identityId: string, at: Date): IdentityVersion {
  return {
    identityId,
    tenantId,
    version: 1,
    summary: summary(),
    chain: [],
    certificatesPem: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
    secret: {
      ciphertext: randomBytes(48),
      iv: randomBytes(12),
      wrappedDek: randomBytes(60),
      kekId: 'local:kek-1',
    },
    createdAt: at,
    activatedAt: at,
  };
}

/** One list of the API: where it is, what names an item, and how to add the i-th item to it. */
interface ListSpec {
  name: string;
  path(tenant: string): string;
  key(item: Record<string, unknown>): string;
  add(store: Store, tenant: string, i: number): Promise<void>;
}

/** Alerts are synced as a whole set, so the spec keeps each tenant's. */
const alertSets = new Map<string, Parameters<Store['syncAlerts']>[1]>();
/** Mappings need a live identity of their tenant. */
const mappingIdentity = new Map<string, string>();

async function identityOf(store: Store, tenant: string): Promise<string> {
  let id = mappingIdentity.get(tenant);
  if (id === undefined) {
    id = uid('idn');
    const at = new Date(T0);
    await store.createIdentity(
      tenant,
      {
        id,
        tenantId: tenant,
        name: 'mapped',
        activeVersion: 1,
        disabled: false,
        createdAt: at,
        updatedAt: at,
      },
      version(tenant, id, at),
    );
    mappingIdentity.set(tenant, id);
  }
  return id;
}

/** The `i`-th mapping of a tenant, made at {@link instant}(i). */
function mapping(tenant: string, identityId: string, i: number, deleted = false): Mapping {
  const at = instant(i);
  return {
    id: uid('map'),
    tenantId: tenant,
    name: `m${i}`,
    service: 'api',
    url: `https://api.example.com/${i}/`,
    match: 'prefix',
    identityId,
    enabled: true,
    deleted,
    createdAt: at,
    updatedAt: at,
  };
}

function mappingSpec(includeDeleted: boolean): ListSpec {
  return {
    name: includeDeleted ? 'mappings?includeDeleted=true' : 'mappings',
    path: (t) => `/v1/tenants/${t}/mappings${includeDeleted ? '?includeDeleted=true' : ''}`,
    key: (item) => String(item.id),
    async add(store, tenant, i) {
      // Deleted ones are listed with includeDeleted only.
      await store.createMapping(
        tenant,
        mapping(tenant, await identityOf(store, tenant), i, includeDeleted && i % 2 === 1),
      );
    },
  };
}

const SPECS: ListSpec[] = [
  {
    name: 'identities',
    path: (t) => `/v1/tenants/${t}/identities`,
    key: (item) => String(item.id),
    async add(store, tenant, i) {
      const id = uid('idn');
      const at = instant(i);
      await store.createIdentity(
        tenant,
        {
          id,
          tenantId: tenant,
          name: `i${i}`,
          activeVersion: 1,
          disabled: false,
          createdAt: at,
          updatedAt: at,
        },
        version(tenant, id, at),
      );
    },
  },
  mappingSpec(false),
  mappingSpec(true),
  {
    name: 'client-certificates',
    path: (t) => `/v1/tenants/${t}/client-certificates`,
    key: (item) => String(item.id),
    async add(store, tenant, i) {
      const at = instant(i);
      await store.createClientCertificate(tenant, {
        id: uid('ccr'),
        tenantId: tenant,
        name: `c${i}`,
        source: 'uploaded',
        summary: summary(),
        certificatePem: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
        createdAt: at,
        updatedAt: at,
      });
    },
  },
  {
    name: 'alerts',
    path: (t) => `/v1/tenants/${t}/alerts`,
    key: (item) => String(item.objectId),
    async add(store, tenant, i) {
      const set = alertSets.get(tenant) ?? [];
      set.push({
        tenantId: tenant,
        objectType: i % 2 === 0 ? 'identity' : 'client_certificate',
        objectId: uid('obj'),
        objectVersion: '1',
        kind: 'expiring',
        name: `a${i}`,
        fingerprintSha256: 'ab',
        notAfter: instant(i),
        thresholdDays: 7,
      });
      alertSets.set(tenant, set);
      await store.syncAlerts(tenant, set, new Date(T0));
    },
  },
  {
    name: 'notifications',
    path: (t) => `/v1/tenants/${t}/notifications`,
    key: (item) => String(item.id),
    async add(store, tenant, i) {
      await store.claimNotification(
        tenant,
        {
          id: uid('evt'),
          tenantId: tenant,
          objectType: 'identity',
          objectId: uid('idn'),
          objectVersion: '1',
          thresholdDays: 7,
          kind: 'expiring',
          notAfter: new Date(T0),
          payload: '{}',
          createdAt: instant(i),
        },
        [],
      );
    },
  },
  {
    name: 'audit-events',
    path: (t) => `/v1/tenants/${t}/audit-events?objectType=mapping`,
    key: (item) => String(item.id),
    async add(store, tenant, i) {
      await store.appendAuditEvent(tenant, {
        id: uid('aud'),
        tenantId: tenant,
        at: instant(i),
        actor: 'cli',
        action: 'mapping.update',
        objectType: 'mapping',
        objectId: uid('map'),
        detail: { i },
      });
    },
  },
  {
    // The operator's list spans every tenant: its items are tenants made for it alone.
    name: 'tenants',
    path: () => '/v1/tenants',
    key: (item) => String(item.id),
    async add(store, _tenant, i) {
      await store.createTenant({
        id: `t${randomBytes(5).toString('hex')}`,
        name: `t${i}`,
        createdAt: instant(i),
      });
    },
  },
];

type Listed = { items: Record<string, unknown>[]; nextCursor?: string };

/** One page (with the operator token when `token` is undefined); fails the test on anything but 200. */
async function page(
  twoway: BuiltTwoway,
  path: string,
  token: string | undefined,
  query: string,
): Promise<Listed> {
  const response = await twoway.call(`${path}${path.includes('?') ? '&' : '?'}${query}`, {
    ...(token ? { token } : {}),
  });
  expect(response.status, await response.clone().text()).toBe(200);
  return (await response.json()) as Listed;
}

/**
 * Walks a list to the end with `limit` (undefined: the default), calling `between` after each page;
 * returns the keys in the order seen.
 */
async function walk(
  twoway: BuiltTwoway,
  path: string,
  token: string | undefined,
  key: ListSpec['key'],
  limit: number | undefined,
  between: () => Promise<void> = async () => {},
): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 10_000; pages++) {
    const query = [limit === undefined ? '' : `limit=${limit}`, cursor ? `cursor=${cursor}` : '']
      .filter(Boolean)
      .join('&');
    const result = await page(twoway, path, token, query);
    expect(result.items.length).toBeLessThanOrEqual(limit ?? 100);
    seen.push(...result.items.map(key));
    cursor = result.nextCursor;
    if (cursor === undefined) return seen;
    expect(result.items.length).toBeGreaterThan(0);
    await between();
  }
  throw new Error('the walk did not end');
}

/** True when `part` appears in `whole` in the same order (not necessarily next to each other). */
function isSubsequence(part: string[], whole: string[]): boolean {
  let at = 0;
  for (const key of whole) if (key === part[at]) at += 1;
  return at === part.length;
}

describe.each(backends)('paging on $name', (backend) => {
  const twoway = build({ backend });

  describe.each(SPECS)('$name', (spec) => {
    let tenant: string;
    let apiKey: string;
    let added = 0;
    const add = async (n: number) => {
      for (let i = 0; i < n; i++) {
        added += 1;
        await spec.add(twoway.store, tenant, added);
      }
    };
    /** The operator lists tenants; the tenant's key everything else. */
    const token = () => (spec.name === 'tenants' ? undefined : apiKey);
    /** The whole list, in one page. */
    const everything = async () =>
      (await page(twoway, spec.path(tenant), token(), 'limit=1000')).items.map(spec.key);

    beforeAll(async () => {
      tenant = `p${randomBytes(5).toString('hex')}`;
      apiKey = await createTenant(twoway, tenant);
      await add(8);
    });

    test('limit 1 and 2 walk to the end: every item there at the start once, in order, while items are added', async () => {
      for (const limit of [1, 2]) {
        const before = await everything();
        // One item added after each of the first five pages (new items may sort after the cursor:
        // adding one per page for ever would keep a limit-1 walk going for ever).
        let pages = 0;
        const between = async () => {
          pages += 1;
          if (pages <= 5) await add(1);
        };
        const seen = await walk(twoway, spec.path(tenant), token(), spec.key, limit, between);
        expect(new Set(seen).size, 'no item twice').toBe(seen.length);
        expect(
          before.filter((k) => !seen.includes(k)),
          'no item missed',
        ).toEqual([]);
        expect(isSubsequence(seen, await everything()), 'in list order').toBe(true);
      }
    });

    test('the default limit is 100 and the walk ends; limit 1000 is one page', async () => {
      await add(210 - added);
      const first = await page(twoway, spec.path(tenant), token(), '');
      expect(first.items).toHaveLength(100);
      expect(first.nextCursor).toBeDefined();
      const before = await everything();
      const seen = await walk(twoway, spec.path(tenant), token(), spec.key, undefined, () => add(3));
      expect(new Set(seen).size).toBe(seen.length);
      expect(before.filter((k) => !seen.includes(k))).toEqual([]);
      const whole = await page(twoway, spec.path(tenant), token(), 'limit=1000');
      expect(whole.nextCursor).toBeUndefined();
      expect(whole.items.length).toBeGreaterThanOrEqual(before.length);
    });
  });

  describe('cursors and limits that are refused', () => {
    let mappingsCursor: string;
    let otherKey: string;
    let key: string;
    const tenant = `c${randomBytes(5).toString('hex')}`;
    const other = `o${randomBytes(5).toString('hex')}`;

    beforeAll(async () => {
      key = await createTenant(twoway, tenant);
      otherKey = await createTenant(twoway, other);
      const mappings = SPECS.find((s) => s.name === 'mappings') as ListSpec;
      for (const t of [tenant, other]) for (let i = 0; i < 3; i++) await mappings.add(twoway.store, t, i);
      const first = await page(twoway, `/v1/tenants/${tenant}/mappings`, key, 'limit=1');
      mappingsCursor = first.nextCursor as string;
      expect(mappingsCursor).toMatch(/^[A-Za-z0-9_-]+$/);
      // Opaque: the scope is a hash, naming neither the tenant nor the filter in clear.
      expect(Buffer.from(mappingsCursor, 'base64url').toString('utf8')).not.toMatch(
        new RegExp(`${tenant}|live`),
      );
    });

    const code = async (path: string, token: string) => {
      const response = await twoway.call(path, { token });
      return [response.status, ((await response.json()) as { code: string }).code];
    };

    test('garbage, truncated and tampered cursors answer 400 invalid_cursor', async () => {
      const scope = JSON.parse(Buffer.from(mappingsCursor, 'base64url').toString('utf8'))[1] as string;
      const forged = (value: unknown[]) => Buffer.from(JSON.stringify(value)).toString('base64url');
      for (const cursor of [
        'nope',
        '%21%21%21',
        mappingsCursor.slice(0, -3),
        forged([2, scope, T0, 'map_x']),
        forged([1, scope, 'not a number', 'map_x']),
        forged([1, scope, T0]),
        forged([1, scope, T0, 'map_x', 'extra']),
        forged([1, scope, 1.5, 'map_x']),
        forged({ v: 1 } as unknown as unknown[]),
      ]) {
        expect(await code(`/v1/tenants/${tenant}/mappings?cursor=${cursor}`, key), cursor).toEqual([
          400,
          'invalid_cursor',
        ]);
      }
    });

    test("another list's, another tenant's or another filter's cursor answers 400 invalid_cursor", async () => {
      expect(await code(`/v1/tenants/${tenant}/identities?cursor=${mappingsCursor}`, key)).toEqual([
        400,
        'invalid_cursor',
      ]);
      expect(await code(`/v1/tenants/${tenant}/client-certificates?cursor=${mappingsCursor}`, key)).toEqual([
        400,
        'invalid_cursor',
      ]);
      expect(await code(`/v1/tenants/${other}/mappings?cursor=${mappingsCursor}`, otherKey)).toEqual([
        400,
        'invalid_cursor',
      ]);
      expect(
        await code(`/v1/tenants/${tenant}/mappings?includeDeleted=true&cursor=${mappingsCursor}`, key),
      ).toEqual([400, 'invalid_cursor']);
      const audit = SPECS.find((s) => s.name === 'audit-events') as ListSpec;
      for (let i = 0; i < 2; i++) await audit.add(twoway.store, tenant, i);
      const events = await page(twoway, `/v1/tenants/${tenant}/audit-events`, key, 'limit=1');
      expect(events.nextCursor).toBeDefined();
      expect(
        await code(
          `/v1/tenants/${tenant}/audit-events?action=tenant.create&cursor=${events.nextCursor}`,
          key,
        ),
      ).toEqual([400, 'invalid_cursor']);
      // The same cursor with its own list and filters still works.
      expect(
        (await page(twoway, `/v1/tenants/${tenant}/mappings`, key, `cursor=${mappingsCursor}`)).items,
      ).toHaveLength(2);
    });

    test('limit outside 1..1000 or not an integer answers 400 bad_request', async () => {
      for (const limit of ['0', '1001', '-1', '2.5', 'ten']) {
        expect(await code(`/v1/tenants/${tenant}/mappings?limit=${limit}`, key), limit).toEqual([
          400,
          'bad_request',
        ]);
      }
      expect((await page(twoway, `/v1/tenants/${tenant}/mappings`, key, 'limit=1000')).items).toHaveLength(3);
    });
  });

  describe('large items', () => {
    let ca: CertKey;
    beforeAll(async () => {
      ca = await makeRoot('Paging Anchor CA');
    });

    test('trust anchors of 250 KB (the 200 × 250 KB reproduction) are refused with 413 and store nothing', async () => {
      const id = `l${randomBytes(5).toString('hex')}`;
      const key = await createTenant(twoway, id);
      const identityId = await identityOf(twoway.store, id);
      const anchors = ca.certPem.repeat(Math.ceil(250_000 / ca.certPem.length));
      expect(anchors.length).toBeGreaterThanOrEqual(250_000);
      const before = await snapshotDatabase(twoway);
      const response = await twoway.call(`/v1/tenants/${id}/mappings`, {
        method: 'POST',
        token: key,
        json: {
          name: 'big',
          service: 'api',
          url: 'https://api.example.com/',
          identityId,
          trustAnchorsPem: anchors,
        },
      });
      expect(response.status).toBe(413);
      expect(((await response.json()) as { code: string }).code).toBe('trust_anchors_too_large');
      expect(await snapshotDatabase(twoway)).toEqual(before);
      // Within 64 KiB but over 100 certificates: refused too; 100 of them are accepted.
      const small = ca.certPem.repeat(101);
      expect(small.length).toBeLessThanOrEqual(64 * 1024);
      const many = await twoway.call(`/v1/tenants/${id}/mappings`, {
        method: 'POST',
        token: key,
        json: {
          name: 'many',
          service: 'api',
          url: 'https://api.example.com/',
          identityId,
          trustAnchorsPem: small,
        },
      });
      expect([many.status, ((await many.json()) as { code: string }).code]).toEqual([
        413,
        'trust_anchors_too_large',
      ]);
      const hundred = await twoway.call(`/v1/tenants/${id}/mappings`, {
        method: 'POST',
        token: key,
        json: {
          name: 'hundred',
          service: 'api',
          url: 'https://api.example.com/',
          identityId,
          trustAnchorsPem: ca.certPem.repeat(100),
        },
      });
      expect(hundred.status).toBe(201);
    });

    test('a page of mappings with 60 KB trust anchors each stops near 4 MiB, and the walk still sees every one', async () => {
      const tenant = `b${randomBytes(5).toString('hex')}`;
      const key = await createTenant(twoway, tenant);
      const identityId = await identityOf(twoway.store, tenant);
      const anchors = ca.certPem.repeat(Math.floor(60_000 / ca.certPem.length));
      const ids: string[] = [];
      for (let i = 0; i < 90; i++) {
        const big = { ...mapping(tenant, identityId, i), trustAnchorsPem: anchors };
        ids.push(big.id);
        await twoway.store.createMapping(tenant, big);
      }
      const response = await twoway.call(`/v1/tenants/${tenant}/mappings?limit=1000`, { token: key });
      const bytes = Buffer.byteLength(await response.clone().text());
      const first = (await response.json()) as Listed;
      expect(bytes).toBeLessThanOrEqual(4 * 1024 * 1024 + 64 * 1024);
      expect(first.items.length).toBeLessThan(90);
      expect(first.items.length).toBeGreaterThan(60);
      expect(first.nextCursor).toBeDefined();
      // The store stops reading at the same budget: it never holds 1000 rows of 60 KB for one page.
      const stored = await twoway.store.listMappings(tenant, { limit: 1000 });
      expect(stored.items.length).toBeLessThan(90);
      expect(stored.nextCursor).toBeDefined();
      const seen = await walk(twoway, `/v1/tenants/${tenant}/mappings`, key, (m) => String(m.id), 1000);
      expect([...seen].sort()).toEqual([...ids].sort());
    });
  });
});

describe('the OpenAPI document', () => {
  const twoway = build();

  test('names limit and cursor on every list', async () => {
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      paths: Record<string, { get?: { parameters?: { in: string; name: string }[] } }>;
    };
    const lists = [
      '/v1/tenants',
      '/v1/tenants/{tenant}/identities',
      '/v1/tenants/{tenant}/mappings',
      '/v1/tenants/{tenant}/client-certificates',
      '/v1/tenants/{tenant}/alerts',
      '/v1/tenants/{tenant}/notifications',
      '/v1/tenants/{tenant}/audit-events',
    ];
    for (const path of lists) {
      const query = (doc.paths[path]?.get?.parameters ?? [])
        .filter((p) => p.in === 'query')
        .map((p) => p.name);
      expect(query, path).toEqual(expect.arrayContaining(['limit', 'cursor']));
    }
  });
});
