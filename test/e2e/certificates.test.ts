import type { BrowserContext, Page } from 'playwright-core';
import { beforeAll, describe, expect, test } from 'vitest';
import { DAY_MS } from '../../src/certificates/index.js';
import { issueLeaf, makePkcs12, makePki, type TestPki } from '../fixtures/pki.js';
import { startMtlsServer } from '../helpers/mtls-server.js';
import { createTenant, e2eSuite, expectAccessible, memberPage } from './harness.js';

const suite = e2eSuite();
let pki: TestPki;

/** A new tenant and a page signed in to its portal through an admin's portal link. */
async function tenantPage(tenant: string, width = 1280): Promise<{ context: BrowserContext; page: Page }> {
  await createTenant(suite.server(), tenant);
  return memberPage(suite.browser(), suite.server(), tenant, { width });
}

async function uploadIn(page: Page, p12: Buffer, password: string, name: string): Promise<void> {
  await page.getByLabel('Certificate file (.p12, .pfx or PEM)').setInputFiles({
    name: 'client.p12',
    mimeType: 'application/x-pkcs12',
    buffer: p12,
  });
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Upload and save' }).click();
}

describe('outbound certificates page', () => {
  beforeAll(async () => {
    pki = await makePki('Twoway E2E');
  });

  test('a wrong password keeps the dialog open with the error at the password and stores nothing; the right one saves, toasts and shows name and expiry', async () => {
    const { context, page } = await tenantPage('acme');
    const leaf = await issueLeaf(pki.intermediate, { cn: 'acme-client' });
    const p12 = makePkcs12(leaf, [pki.intermediate], 'right-pass');

    await page.getByRole('button', { name: 'Upload certificate' }).click();
    const dialog = page.getByRole('dialog', { name: 'Upload certificate' });
    await expect(dialog.isVisible()).resolves.toBe(true);
    // Focus moved into the dialog.
    await expect(page.evaluate(() => document.activeElement?.closest('dialog') !== null)).resolves.toBe(true);
    await expectAccessible(page);

    await uploadIn(page, p12, 'wrong-pass', 'Acme production');
    const error = dialog.locator('#password-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/password/i);
    expect(await page.getByLabel('Password').getAttribute('aria-describedby')).toBe('password-error');
    expect(await dialog.isVisible()).toBe(true);
    const stored = await suite.server().call('/v1/tenants/acme/identities');
    expect(((await stored.json()) as { items: unknown[] }).items).toEqual([]);

    await page.getByLabel('Password').fill('right-pass');
    await page.getByRole('button', { name: 'Upload and save' }).click();
    const toast = page.locator('.toast');
    await toast.waitFor();
    expect(await toast.textContent()).toContain('uploaded and saved');
    const box = await toast.boundingBox();
    const viewport = page.viewportSize();
    // Bottom-left corner.
    expect(box && viewport && box.x < viewport.width / 3 && box.y > viewport.height / 2).toBe(true);
    expect(await dialog.isVisible()).toBe(false);

    const current = page.getByLabel('Active certificate');
    await current.waitFor();
    const text = await current.textContent();
    expect(text).toContain('Acme production');
    expect(text).toContain('CN=acme-client');
    expect(text).toContain(leaf.cert.notAfter.toISOString().slice(0, 10));
    expect(await page.locator('.banner').count()).toBe(0);
    await expectAccessible(page);
    await context.close();
  });

  test('a certificate that expires in 3 days shows the yellow banner in words, red with the date once past, and its action opens a new-version dialog that Escape closes', async () => {
    const { context, page } = await tenantPage('soon');
    const notAfter = new Date(Date.now() + 3 * DAY_MS - 60_000);
    const leaf = await issueLeaf(pki.intermediate, { cn: 'soon-client', notAfter });
    const upload = await suite.server().call('/v1/tenants/soon/identities', {
      method: 'POST',
      json: {
        name: 'Soon',
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    expect(upload.status).toBe(201);
    await page.reload();
    const banner = page.locator('.banner-yellow');
    await banner.waitFor();
    expect(await banner.textContent()).toContain(
      `expires in 3 days, on ${notAfter.toISOString().slice(0, 10)}`,
    );
    expect(await banner.getByRole('button', { name: 'Upload a new certificate' }).isVisible()).toBe(true);
    await expectAccessible(page);

    // Five days on (the browser's clock): expired, in red, in words.
    await page.clock.setFixedTime(new Date(Date.now() + 5 * DAY_MS));
    await page.reload();
    const red = page.locator('.banner-red');
    await red.waitFor();
    expect(await red.textContent()).toContain(
      `expired 2 days ago, on ${notAfter.toISOString().slice(0, 10)}`,
    );
    await expectAccessible(page);
    await page.clock.setFixedTime(new Date());
    await page.reload();
    await banner.waitFor();

    // "Upload a new certificate" opens the dialog for a new version of that identity.
    await banner.getByRole('button', { name: 'Upload a new certificate' }).click();
    await page.getByRole('dialog', { name: 'New version of Soon' }).waitFor();
    await page.keyboard.press('Escape');
    expect(await page.getByRole('dialog').count()).toBe(0);
    await context.close();
  });

  test('the page works at 375 px wide with no serious accessibility violation', async () => {
    const { context, page } = await tenantPage('phone', 375);
    await page.getByRole('button', { name: 'Upload certificate' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await expectAccessible(page);
    await context.close();
  });

  test('versions: a new version through the dialog, roll back to version 1, disable and enable, test before saving against a real mTLS server, delete', async () => {
    const { context, page } = await tenantPage('versions');
    const first = await issueLeaf(pki.intermediate, { cn: 'versions-one' });
    await page.getByRole('button', { name: 'Upload certificate' }).click();
    await uploadIn(page, makePkcs12(first, [pki.intermediate], 'pw-one'), 'pw-one', 'Versioned');
    await page.locator('.toast', { hasText: 'uploaded and saved' }).waitFor();

    const second = await issueLeaf(pki.intermediate, { cn: 'versions-two' });
    await page.getByRole('button', { name: 'Upload a new version' }).click();
    const dialog = page.getByRole('dialog', { name: 'New version of Versioned' });
    await dialog.waitFor();
    await page.getByLabel('Certificate file (.p12, .pfx or PEM)').setInputFiles({
      name: 'two.p12',
      mimeType: 'application/x-pkcs12',
      buffer: makePkcs12(second, [pki.intermediate], 'pw-two'),
    });
    await page.getByLabel('Password').fill('pw-two');

    // Test before saving: the tester presents the certificate to a server that demands one.
    const server = await startMtlsServer(pki);
    try {
      await dialog.getByText('Test before saving').click();
      await page.getByLabel('URL to test against').fill(`${server.url}/hello`);
      await page.getByLabel('CA certificates of the server (PEM, optional)').fill(pki.root.certPem);
      await page.getByRole('button', { name: 'Run the test' }).click();
      const report = page.getByRole('status', { name: 'Test result' });
      await report.waitFor();
      const text = await report.textContent();
      expect(text).toContain('Verdict: ok');
      expect(text).toMatch(/Time: \d+ ms/);
      expect(text).toContain('CN=Twoway E2E');
    } finally {
      await server.close();
    }
    let identities = (await (await suite.server().call('/v1/tenants/versions/identities')).json()) as {
      items: { versions: unknown[] }[];
    };
    expect(identities.items[0]?.versions).toHaveLength(1);

    await dialog.getByRole('button', { name: 'Upload and save' }).click();
    await page.locator('.toast', { hasText: 'New version of Versioned saved.' }).waitFor();
    await expect.poll(() => page.getByLabel('Active certificate').textContent()).toContain('CN=versions-two');

    await page.getByRole('button', { name: 'Roll back to version 1' }).click();
    await page.locator('.toast', { hasText: 'Rolled back: done.' }).waitFor();
    await expect.poll(() => page.getByLabel('Active certificate').textContent()).toContain('CN=versions-one');
    expect(await page.getByRole('button', { name: 'Activate version 2' }).isVisible()).toBe(true);

    await page.getByRole('button', { name: 'Disable Versioned' }).click();
    await page.getByRole('button', { name: 'Enable Versioned' }).waitFor();
    expect(await page.getByRole('heading', { name: /Versioned/ }).textContent()).toContain('disabled');
    await page.getByRole('button', { name: 'Enable Versioned' }).click();
    await page.getByRole('button', { name: 'Disable Versioned' }).waitFor();

    // Schedule: a third version that activates tomorrow; the active one stays.
    const third = await issueLeaf(pki.intermediate, { cn: 'versions-three' });
    await page.getByRole('button', { name: 'Upload a new version' }).click();
    await page.getByLabel('Certificate file (.p12, .pfx or PEM)').setInputFiles({
      name: 'three.p12',
      mimeType: 'application/x-pkcs12',
      buffer: makePkcs12(third, [pki.intermediate], 'pw-three'),
    });
    await page.getByLabel('Password').fill('pw-three');
    const tomorrow = new Date(Date.now() + DAY_MS);
    const local = new Date(tomorrow.getTime() - tomorrow.getTimezoneOffset() * 60_000)
      .toISOString()
      .slice(0, 16);
    await page.getByLabel('Activate at (optional; now if empty)').fill(local);
    await page.getByRole('button', { name: 'Upload and save' }).click();
    await page.getByRole('row', { name: /versions-three.*scheduled for/ }).waitFor();
    expect(await page.getByLabel('Active certificate').textContent()).toContain('CN=versions-one');

    page.once('dialog', (confirm) => void confirm.accept());
    await page.getByRole('button', { name: 'Delete Versioned' }).click();
    await page.locator('.toast', { hasText: 'Deleted: done.' }).waitFor();
    identities = (await (await suite.server().call('/v1/tenants/versions/identities')).json()) as {
      items: { versions: unknown[] }[];
    };
    expect(identities.items).toEqual([]);
    await context.close();
  });
});
