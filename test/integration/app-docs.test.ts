import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { catalogue } from '../../src/errors/catalogue.js';
import { type DocumentedRoute, documentedRoutes } from '../helpers/api-doc.js';
import { build, buildInTest } from '../helpers/twoway.js';

/** The team's API contract, beside the checkout (as ../shared/corpus is). */
const API_MD = path.resolve(process.cwd(), '../shared/API.md');
const README = new URL('../../README.md', import.meta.url);
/** What `ANY` in API.md stands for. */
const ANY = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

describe('operations and documentation endpoints', () => {
  const twoway = build();

  test('healthz and readyz answer without a token; metrics (operator token) are Prometheus text', async () => {
    expect(await (await fetch(`${twoway.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${twoway.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await twoway.call('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('twoway_process_');
  });

  test('readyz reports not_ready when the store is gone', async () => {
    const other = await buildInTest();
    await other.store.close();
    const response = await fetch(`${other.url}/readyz`);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { code: string }).code).toBe('not_ready');
  });

  test('the OpenAPI document serves every route of API.md and names no route the docs do not, and /docs serves a page', async () => {
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const served = new Set(
      Object.entries(doc.paths).flatMap(([route, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${route.replace(/\{[^}]*\}/g, '{}')}`),
      ),
    );
    const isServed = (r: DocumentedRoute) =>
      (r.method === 'ANY' ? ANY : [r.method]).every((method) => served.has(`${method} ${r.path}`));

    const contract = documentedRoutes(readFileSync(API_MD, 'utf8'), { bareMethods: true });
    // Everything before API.md's "# Additions" is served today, and of the Additions the People
    // section. The other Additions (connections, platform identities, ...) are not served yet, so
    // not required. The edge hello is served by the edge listener on its own port (edge tests).
    const current = contract.filter(
      (r) => (!r.part.startsWith('Additions') || r.section === 'People') && !r.path.endsWith('/mtls/hello'),
    );
    expect(
      current.filter((r) => r.section === 'People').length,
      'People routes of API.md',
    ).toBeGreaterThanOrEqual(14);
    expect(current.length, 'routes parsed from API.md').toBeGreaterThanOrEqual(30);
    expect(current.filter((r) => !isServed(r)).map((r) => `${r.method} ${r.path}`)).toEqual([]);

    // The other way: every route served is named by API.md (any part) or by the README, which
    // documents what Twoway adds (API.md allows additions, and is not ours to edit).
    const named = [...contract, ...documentedRoutes(readFileSync(README, 'utf8'))];
    const isNamed = (key: string) => {
      const [method = '', route] = key.split(' ');
      return named.some((r) => r.path === route && (r.method === method || r.method === 'ANY'));
    };
    expect([...served].filter((key) => !isNamed(key))).toEqual([]);

    const page = await fetch(`${twoway.url}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
  });

  test('API.md shorthand is read as the routes it stands for', () => {
    const sample = [
      '# Contract',
      '## Things',
      '- `POST /v1/tenants/{tenant}/things` → `201 Thing`. `GET` (list), `GET`/`DELETE .../{thingId}`,',
      '  `POST .../things/{id}/approve`; `GET .../parts`, `PUT .../parts/{part}`.',
      '- `PUT /v1/tenants/{tenant}/members/{memberId}`; `POST .../api-keys`.',
    ].join('\n');
    expect(documentedRoutes(sample, { bareMethods: true }).map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/tenants/{}/things',
      'GET /v1/tenants/{}/things',
      'GET /v1/tenants/{}/things/{}',
      'DELETE /v1/tenants/{}/things/{}',
      'POST /v1/tenants/{}/things/{}/approve',
      'GET /v1/tenants/{}/things/{}/parts',
      'PUT /v1/tenants/{}/things/{}/parts/{}',
      'PUT /v1/tenants/{}/members/{}',
      'POST /v1/tenants/{}/api-keys',
    ]);
  });

  test('docs/errors.md lists exactly the codes of the catalogue, with their status', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(catalogue).map(([c, e]) => [c, e.status])),
    );
  });

  test('unknown routes answer problem+json not_found', async () => {
    const response = await fetch(`${twoway.url}/v1/nothing`, {
      headers: { authorization: 'Bearer test-operator-token-0123456789' },
    });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/problem\+json/);
  });
});
