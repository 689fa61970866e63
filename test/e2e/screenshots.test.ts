import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, test } from 'vitest';
import { DAY_MS } from '../../src/certificates/index.js';
import { issueLeaf, makePki } from '../fixtures/pki.js';
import { createTenant, e2eSuite, memberPage, OPERATOR_TOKEN } from './harness.js';

const OUT = resolve(import.meta.dirname, '../../docs/screenshots');

// `npm run screenshots` only (UI_SCREENSHOTS=1): writes docs/screenshots/*.png of each main page.
describe.skipIf(process.env.UI_SCREENSHOTS !== '1')('screenshots for the README', () => {
  const suite = e2eSuite();

  test('each main page, desktop and 375 px', async () => {
    mkdirSync(OUT, { recursive: true });
    const server = suite.server();
    await createTenant(server, 'acme');
    await createTenant(server, 'globex');
    const pki = await makePki('Acme Issuing');
    const leaf = await issueLeaf(pki.intermediate, {
      cn: 'acme-payments-client',
      notAfter: new Date(Date.now() + 5 * DAY_MS),
    });
    await server.call('/v1/tenants/acme/identities', {
      method: 'POST',
      json: {
        name: 'Payments client',
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    const partner = await issueLeaf(pki.intermediate, { cn: 'partner-one' });
    await server.call('/v1/tenants/acme/client-certificates', {
      method: 'POST',
      json: { name: 'Partner one', certificatePem: partner.certPem },
    });
    for (const [width, suffix] of [
      [1280, ''],
      [375, '-phone'],
    ] as const) {
      const { context, page } = await memberPage(suite.browser(), server, 'acme', {
        memberId: `admin${width}`,
        width,
      });
      for (const [name, title] of [
        ['certificates', 'Outbound certificates'],
        ['mappings', 'Mappings'],
        ['inbound', 'Inbound mTLS'],
        ['alerts', 'Alerts and audit'],
      ] as const) {
        await page.goto(`${server.url}/ui/#/t/acme/${name}`);
        await page.getByRole('heading', { level: 1, name: title }).waitFor();
        await page.waitForLoadState('networkidle');
        await page.screenshot({ path: `${OUT}/${name}${suffix}.png`, fullPage: true });
        if (name === 'certificates' && suffix === '') {
          await page.getByRole('button', { name: 'Upload certificate' }).click();
          await page.getByRole('dialog').waitFor();
          await page.screenshot({ path: `${OUT}/upload-dialog.png` });
        }
      }
      await context.close();
    }
    const context = await suite.browser().newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel('Operator token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Operator console' }).waitFor();
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: `${OUT}/console.png`, fullPage: true });
    await context.close();
    expect(true).toBe(true);
  });
});
