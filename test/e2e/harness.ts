import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';
import { tempDir } from '../fixtures/pki.js';
import { freePort } from '../helpers/nginx.js';

const ROOT = resolve(import.meta.dirname, '../..');
export const OPERATOR_TOKEN = 'e2e-operator-token-0123456789';

/** A `twoway serve` child on free ports with its own data folder. */
export interface E2eServer {
  url: string;
  edgePort: number;
  /** fetch against the API with the operator token unless `token` is given (`null`: none). */
  call(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<Response>;
}

/**
 * Starts the built `twoway serve` (dist/, what `npm start` runs) for the file's tests and Debian's
 * Chromium, both stopped after the file. One browser per file; tests open pages in fresh contexts.
 */
export function e2eSuite(env: Record<string, string> = {}): {
  server: () => E2eServer;
  browser: () => Browser;
} {
  let child: ChildProcess | undefined;
  let browser: Browser | undefined;
  let server: E2eServer | undefined;
  const data = tempDir('twoway-e2e-');
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist/ui/index.html')))
      throw new Error('run npm run build first (dist/ui is missing)');
    const [port, edgePort] = [await freePort(), await freePort()];
    child = spawn('node', [join(ROOT, 'dist/cli/index.js'), 'serve'], {
      env: {
        ...process.env,
        TWOWAY_HTTP_PORT: String(port),
        TWOWAY_EDGE_PORT: String(edgePort),
        TWOWAY_DATA_DIR: data.dir,
        TWOWAY_OPERATOR_TOKEN: OPERATOR_TOKEN,
        TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
        TWOWAY_LOG_LEVEL: 'warn',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const url = `http://127.0.0.1:${port}`;
    const [up] = await Promise.all([waitFor(`${url}/readyz`), launch().then((b) => (browser = b))]);
    if (!up) throw new Error('twoway serve did not come up');
    server = {
      url,
      edgePort,
      async call(path, init = {}) {
        const { token, json, ...rest } = init;
        const headers = new Headers(rest.headers);
        if (token !== null) headers.set('authorization', `Bearer ${token ?? OPERATOR_TOKEN}`);
        if (json !== undefined) headers.set('content-type', 'application/json');
        return fetch(`${url}${path}`, {
          ...rest,
          headers,
          ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
        });
      },
    };
  });
  afterAll(async () => {
    await browser?.close();
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child?.once('exit', r));
    data.cleanup();
  });
  return {
    server: () => server as E2eServer,
    browser: () => browser as Browser,
  };
}

/** Debian's Chromium, headless; never a downloaded browser. */
export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

async function waitFor(url: string): Promise<boolean> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if ((await fetch(url)).ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Creates a tenant with the operator token; returns its API key. */
export async function createTenant(server: E2eServer, id: string): Promise<string> {
  const response = await server.call('/v1/tenants', { method: 'POST', json: { id, name: `${id} Ltd` } });
  expect(response.status).toBe(201);
  return ((await response.json()) as { apiKey: string }).apiKey;
}

/** Fails on any serious or critical axe-core violation on the page as it is now. */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(bad).toEqual([]);
}

/**
 * Adds a member with `role` to the tenant and returns a fresh portal link for them (single use,
 * five minutes), made with the operator token as a platform would.
 */
export async function portalLink(
  server: E2eServer,
  tenant: string,
  memberId: string,
  role: string,
): Promise<string> {
  const member = await server.call(`/v1/tenants/${tenant}/members/${memberId}`, {
    method: 'PUT',
    json: { email: `${memberId}@${tenant}.example`, roles: [role] },
  });
  expect([200, 201]).toContain(member.status);
  const link = await server.call(`/v1/tenants/${tenant}/portal-links`, {
    method: 'POST',
    json: { memberId },
  });
  expect(link.status).toBe(201);
  return ((await link.json()) as { url: string }).url;
}

/** A new browser context signed in to the portal through a member's portal link, on its first page. */
export async function memberPage(
  browser: Browser,
  server: E2eServer,
  tenant: string,
  options: { memberId?: string; role?: string; width?: number } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const url = await portalLink(server, tenant, options.memberId ?? 'alice', options.role ?? 'admin');
  const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.getByRole('heading', { level: 1, name: 'Outbound certificates' }).waitFor();
  return { context, page };
}
