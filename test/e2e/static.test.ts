import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BUDGET_BYTES, firstLoadJsBytes } from '../../scripts/ui-budget.mjs';
import { loadConfig } from '../../src/config/config.js';
import { e2eSuite } from './harness.js';

const suite = e2eSuite({ TWOWAY_UI_FRAME_ANCESTORS: 'https://platform.example' });

describe('the web UI is served from dist/ui', () => {
  test('index.html: strict CSP with the configured frame-ancestors, revalidated, no inline script', async () => {
    const response = await fetch(`${suite.server().url}/ui/`);
    expect(response.status).toBe(200);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain('frame-ancestors https://platform.example');
    expect(response.headers.get('x-frame-options')).toBeNull();
    expect(response.headers.get('cache-control')).toBe('no-cache');
    const html = await response.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\/ui\/assets\/[^"]+\.js"/);
      expect(body?.trim()).toBe('');
    }
    // No CDN, no external fonts: every referenced file is ours.
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  test('hashed assets are cached for a year, immutable; /ui redirects to /ui/', async () => {
    const html = await (await fetch(`${suite.server().url}/ui/`)).text();
    const asset = /src="(\/ui\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const response = await fetch(`${suite.server().url}${asset}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    const redirect = await fetch(`${suite.server().url}/ui`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/ui/');
  });

  test('the page loads in Chromium without a CSP violation', async () => {
    const page = await suite.browser().newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${suite.server().url}/ui/`);
    await page.locator('h1').waitFor();
    expect(problems.filter((p) => /Content Security Policy|Refused/.test(p))).toEqual([]);
    await page.close();
  });

  test(`the first load fetches at most ${BUDGET_BYTES / 1024} KB of gzipped JavaScript`, () => {
    const bytes = firstLoadJsBytes(resolve(import.meta.dirname, '../../dist/ui'));
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThanOrEqual(BUDGET_BYTES);
  });

  test("every path of the UI's generated API types is served by the API it is built with", async () => {
    const generated = readFileSync(resolve(import.meta.dirname, '../../ui/src/api/schema.d.ts'), 'utf8');
    const paths = [...generated.matchAll(/^ {4}"(\/[^"]+)": \{$/gm)].map((m) => m[1] as string);
    expect(paths).toContain('/v1/tenants/{tenant}/identities');
    const document = (await (await fetch(`${suite.server().url}/docs/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(paths.filter((p) => !(p in document.paths))).toEqual([]);
  });

  test("frame-ancestors defaults to 'none'", () => {
    expect(loadConfig({}).uiFrameAncestors).toBe("'none'");
  });
});
