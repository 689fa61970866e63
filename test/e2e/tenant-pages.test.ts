import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { issueLeaf, makePki, type TestPki, tempDir } from '../fixtures/pki.js';
import { createTenant, e2eSuite, expectAccessible, memberPage } from './harness.js';

const suite = e2eSuite();
const TENANT = 'globex';
let pki: TestPki;
let context: BrowserContext;
let page: Page;

/** Opens a page of the portal by its navigation link, as a person would. */
async function open(title: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: title }).click();
  await page.getByRole('heading', { level: 1 }).filter({ hasText: title }).waitFor();
}

async function toast(text: string): Promise<void> {
  await page.locator('.toast', { hasText: text }).first().waitFor();
}

describe('tenant portal pages', () => {
  beforeAll(async () => {
    pki = await makePki('Twoway E2E Pages');
    await createTenant(suite.server(), TENANT);
    const leaf = await issueLeaf(pki.intermediate, { cn: 'globex-client' });
    const upload = await suite.server().call(`/v1/tenants/${TENANT}/identities`, {
      method: 'POST',
      json: {
        name: 'Globex main',
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(upload.status).toBe(201);
    ({ context, page } = await memberPage(suite.browser(), suite.server(), TENANT));
  });
  afterAll(async () => {
    await context?.close();
  });

  test('mappings: add one with the form, then disable it with its checkbox', async () => {
    await open('Mappings');
    await page.getByLabel('Name', { exact: true }).fill('Payments');
    await page.getByLabel('Service').fill('payments');
    await page.getByLabel('URL').fill('https://payments.example/v2/');
    await page.getByLabel('Identity').selectOption({ label: 'Globex main' });
    await page.getByRole('button', { name: 'Save mapping' }).click();
    await toast('Mapping saved.');
    const row = page.getByRole('row', { name: /Payments/ });
    expect(await row.textContent()).toContain('https://payments.example/v2/');
    // The certificate it presents says what deleting it would affect.
    await open('Outbound certificates');
    await page.getByText('Used by 1 mapping and 0 connections.').waitFor();
    await open('Mappings');
    const enabled = page.getByRole('checkbox', { name: 'Payments enabled' });
    expect(await enabled.isChecked()).toBe(true);
    await enabled.click();
    await toast('Payments disabled.');
    const list = (await (await suite.server().call(`/v1/tenants/${TENANT}/mappings`)).json()) as {
      items: { name: string; enabled: boolean }[];
    };
    expect(list.items.map((m) => [m.name, m.enabled])).toEqual([['Payments', false]]);
    await expectAccessible(page);
  });

  test('inbound mTLS: a pasted private key is refused with the API message, a pasted certificate registers, a CSR is signed, revoke and delete', async () => {
    await open('Inbound mTLS');
    const hello = await page.getByLabel('Hello command').inputValue();
    expect(hello).toContain(`/v1/tenants/${TENANT}/mtls/hello`);
    expect(hello).toMatch(/^curl --cert /);

    const client = await issueLeaf(pki.intermediate, { cn: 'partner-one' });
    await page.getByLabel('Name', { exact: true }).first().fill('Partner one');
    await page.getByLabel('Or paste the PEM certificate').fill(client.certPem + client.keyPem);
    await page.getByRole('button', { name: 'Register certificate' }).click();
    const error = page.locator('#cc-pem-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/private key/i);
    let list = (await (await suite.server().call(`/v1/tenants/${TENANT}/client-certificates`)).json()) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);

    await page.getByLabel('Or paste the PEM certificate').fill(client.certPem);
    await page.getByRole('button', { name: 'Register certificate' }).click();
    await toast('Client certificate registered.');
    await page.getByRole('row', { name: /Partner one/ }).waitFor();

    const work = tempDir('twoway-e2e-csr-');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-new',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          join(work.dir, 'key.pem'),
          '-out',
          join(work.dir, 'csr.pem'),
          '-subj',
          '/CN=partner-two',
        ],
        { stdio: 'pipe' },
      );
      await page.getByLabel('Name', { exact: true }).nth(1).fill('Partner two');
      await page
        .getByLabel('Certificate signing request (PEM)')
        .fill(readFileSync(join(work.dir, 'csr.pem'), 'utf8'));
    } finally {
      work.cleanup();
    }
    await page.getByRole('button', { name: 'Sign', exact: true }).click();
    await page.getByRole('link', { name: 'Download certificate' }).waitFor();
    const href = await page.getByRole('link', { name: 'Download certificate' }).getAttribute('href');
    expect(decodeURIComponent(href ?? '')).toContain('-----BEGIN CERTIFICATE-----');
    await page.getByRole('row', { name: /Partner two/ }).waitFor();

    await page.getByRole('button', { name: 'Revoke Partner two' }).click();
    await toast('Revoked.');
    await page.getByRole('row', { name: /Partner two.*revoked/ }).waitFor();
    await page.getByRole('button', { name: 'Delete Partner one' }).click();
    await toast('Deleted.');
    list = (await (await suite.server().call(`/v1/tenants/${TENANT}/client-certificates`)).json()) as {
      items: unknown[];
    };
    expect(list.items).toHaveLength(1);
    await expectAccessible(page);
  });

  test('alerts: notification settings save; the audit log filters by action and pages', async () => {
    // 25 audited changes, plus the first test's: 26, more than one page of 20.
    const mappings = (await (await suite.server().call(`/v1/tenants/${TENANT}/mappings`)).json()) as {
      items: { id: string }[];
    };
    const id = mappings.items[0]?.id as string;
    for (let i = 0; i < 25; i++) {
      await suite
        .server()
        .call(`/v1/tenants/${TENANT}/mappings/${id}`, { method: 'PATCH', json: { enabled: i % 2 === 0 } });
    }
    await open('Alerts and audit');
    await page.getByLabel('E-mail addresses (one per line)').fill('ops@globex.example\nsec@globex.example');
    await page.getByLabel('Alert thresholds in days (comma-separated)').fill('30, 7');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await toast('Notification settings saved.');
    const settings = (await (
      await suite.server().call(`/v1/tenants/${TENANT}/notification-settings`)
    ).json()) as {
      emails: string[];
      thresholdsDays: number[];
    };
    expect(settings.emails).toEqual(['ops@globex.example', 'sec@globex.example']);
    expect([...settings.thresholdsDays].sort((a, b) => a - b)).toEqual([7, 30]);

    await page.getByLabel('Action').fill('mapping.update');
    await page.getByRole('button', { name: 'Filter' }).click();
    const rows = page.getByRole('table', { name: 'Audit events' }).locator('tbody tr');
    await page.waitForFunction(() => document.querySelectorAll('table tbody tr').length > 0);
    await expect.poll(() => rows.count()).toBe(20);
    expect(await rows.first().textContent()).toContain('mapping.update');
    await page.getByRole('button', { name: 'Older' }).click();
    await expect.poll(() => rows.count()).toBe(6);
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: 'Newer' }).click();
    await expect.poll(() => rows.count()).toBe(20);
    await expectAccessible(page);
  });

  test('every page fits 375 px without sideways scrolling and passes axe there', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    for (const title of [
      'Outbound certificates',
      'External API requests',
      'Mappings',
      'Inbound mTLS',
      'Alerts and audit',
    ]) {
      await open(title);
      await page.waitForLoadState('networkidle');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, title).toBeLessThanOrEqual(0);
      await expectAccessible(page);
    }
  });
});
