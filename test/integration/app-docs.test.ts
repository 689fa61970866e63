import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { catalogue } from '../../src/errors/catalogue.js';
import { startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

describe('operations and documentation endpoints', () => {
  let twoway: TestTwoway;

  beforeAll(async () => {
    twoway = await startTestTwoway();
  });
  afterAll(() => twoway?.close());

  test('healthz and readyz answer without a token; metrics (operator token) are Prometheus text', async () => {
    expect(await (await fetch(`${twoway.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${twoway.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await twoway.call('/metrics');
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await metrics.text()).toContain('twoway_process_');
  });

  test('readyz reports not_ready when the store is gone', async () => {
    const other = await startTestTwoway();
    await other.store.close();
    const response = await fetch(`${other.url}/readyz`);
    expect(response.status).toBe(503);
    expect(((await response.json()) as { code: string }).code).toBe('not_ready');
    await other.app.close();
  });

  test('the OpenAPI document lists every route of API.md, and /docs serves a page', async () => {
    const doc = (await (await fetch(`${twoway.url}/docs/openapi.json`)).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(doc.openapi).toMatch(/^3\./);
    const expected: [string, string][] = [
      ['/v1/tenants', 'post'],
      ['/v1/tenants/{tenant}/api-keys', 'post'],
      ['/v1/tenants/{tenant}/api-keys/{id}', 'delete'],
      ['/v1/tenants/{tenant}/identities', 'post'],
      ['/v1/tenants/{tenant}/identities', 'get'],
      ['/v1/tenants/{tenant}/identities/{id}', 'get'],
      ['/v1/tenants/{tenant}/identities/{id}', 'delete'],
      ['/v1/tenants/{tenant}/identities/{id}/versions', 'post'],
      ['/v1/tenants/{tenant}/identities/{id}/versions/{version}/activate', 'post'],
      ['/v1/tenants/{tenant}/mappings', 'post'],
      ['/v1/tenants/{tenant}/mappings', 'get'],
      ['/v1/tenants/{tenant}/mappings/{id}', 'get'],
      ['/v1/tenants/{tenant}/mappings/{id}', 'patch'],
      ['/v1/tenants/{tenant}/mappings/{id}', 'delete'],
      ['/v1/runtime/resolve', 'post'],
      ['/v1/runtime/forward', 'post'],
      ['/v1/runtime/forward', 'get'],
      ['/healthz', 'get'],
      ['/readyz', 'get'],
      ['/metrics', 'get'],
    ];
    for (const [path, method] of expected)
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    const page = await fetch(`${twoway.url}/docs`, { redirect: 'follow' });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
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
