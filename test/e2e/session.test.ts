import { describe, expect, test } from 'vitest';
import { DAY_MS } from '../../src/certificates/index.js';
import { issueLeaf, makePkcs12, makePki } from '../fixtures/pki.js';
import {
  createTenant,
  e2eSuite,
  expectAccessible,
  memberPage,
  OPERATOR_TOKEN,
  portalLink,
} from './harness.js';

const suite = e2eSuite();

describe('signing in, permissions and the operator console', () => {
  test('a portal link signs the member in once; after signing out the same link is refused and the portal asks to sign in', async () => {
    const server = suite.server();
    await createTenant(server, 'initech');
    const url = await portalLink(server, 'initech', 'peter', 'admin');
    const context = await suite.browser().newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.getByRole('heading', { level: 1, name: 'Outbound certificates' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/ui/');
    expect(await page.getByRole('button', { name: /Sign out peter@initech.example/ }).isVisible()).toBe(true);
    const cookies = await context.cookies();
    expect(cookies.some((c) => c.httpOnly)).toBe(true);

    await page.getByRole('button', { name: /Sign out/ }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in to Twoway' }).waitFor();
    const again = await page.goto(url);
    expect(again?.status()).toBe(404);
    expect(await page.textContent('body')).toContain('portal_link_invalid');
    await page.goto(`${server.url}/ui/`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to Twoway' }).waitFor();
    await expectAccessible(page);
    await context.close();
  });

  test('a portal link with intent=upload-certificate lands with the upload dialog open, focus inside', async () => {
    const server = suite.server();
    await createTenant(server, 'cyberdyne');
    await portalLink(server, 'cyberdyne', 'miles', 'admin');
    const response = await server.call('/v1/tenants/cyberdyne/portal-links', {
      method: 'POST',
      json: { memberId: 'miles', intent: 'upload-certificate' },
    });
    const { url } = (await response.json()) as { url: string };
    const context = await suite.browser().newContext();
    const page = await context.newPage();
    await page.goto(url);
    await page.getByRole('dialog', { name: 'Upload certificate' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.closest('dialog') !== null)).toBe(true);
    await context.close();
  });

  test('a viewer sees no upload or write controls, and the API refuses the upload anyway', async () => {
    const server = suite.server();
    await createTenant(server, 'umbrella');
    const { context, page } = await memberPage(suite.browser(), server, 'umbrella', {
      memberId: 'vic',
      role: 'viewer',
    });
    expect(await page.getByRole('button', { name: 'Upload certificate' }).count()).toBe(0);
    expect(await page.getByText('uploading needs the identities:write permission').isVisible()).toBe(true);
    for (const title of ['Mappings', 'Inbound mTLS', 'External API requests']) {
      await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: title }).click();
      await page.getByRole('heading', { level: 1, name: title }).waitFor();
      await page.waitForLoadState('networkidle');
      expect(await page.getByRole('button', { name: /Save|Register|Sign$|Upload/ }).count()).toBe(0);
      await expectAccessible(page);
    }
    // The same session, straight at the API with its CSRF token: 403 forbidden, nothing stored.
    const pki = await makePki('Viewer Test');
    const leaf = await issueLeaf(pki.intermediate, { cn: 'viewer-try' });
    const status = await page.evaluate(
      async ({ certificatePem, privateKeyPem }) => {
        const session = (await (await fetch('/v1/session')).json()) as { csrfToken: string };
        const response = await fetch('/v1/tenants/umbrella/identities', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'twoway-csrf': session.csrfToken },
          body: JSON.stringify({ name: 'nope', certificatePem, privateKeyPem }),
        });
        return [response.status, ((await response.json()) as { code: string }).code];
      },
      { certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem },
    );
    expect(status).toEqual([403, 'forbidden']);
    const list = (await (await server.call('/v1/tenants/umbrella/identities')).json()) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);
    await context.close();
  });

  test('External API requests: Enable SSL authentication is disabled with its reason until a certificate is uploaded, then it can be switched on', async (ctx) => {
    const server = suite.server();
    await createTenant(server, 'hooli');
    // Runs once the server has the connections API (issue "connections"); until then there is no route.
    const probe = await server.call('/v1/tenants/hooli/connections');
    if (probe.status === 404) ctx.skip();
    const { context, page } = await memberPage(suite.browser(), server, 'hooli');
    const nav = page.getByRole('navigation', { name: 'Pages' });
    await nav.getByRole('link', { name: 'External API requests' }).click();
    await page.getByRole('heading', { level: 1, name: 'External API requests' }).waitFor();
    const ssl = page.getByRole('checkbox', { name: 'Enable SSL authentication' });
    await ssl.waitFor();
    expect(await ssl.isDisabled()).toBe(true);
    expect(await page.locator('#c-ssl-why').textContent()).toContain('Upload an active certificate first');
    await page.getByLabel('Name', { exact: true }).fill('Partner API');
    await page.getByLabel('Base URL').fill('https://partner.example/api/');
    await page.getByLabel('Authentication type').selectOption({ label: 'Basic' });
    await page.getByLabel('Username').fill('hooli');
    await page.getByLabel('Password').fill('s3cret-basic');
    await page.getByRole('button', { name: 'Save' }).click();
    const card = page.getByRole('region', { name: 'Connection Partner API' });
    await card.waitFor();
    expect(await card.textContent()).toContain('secret set');
    expect(await card.textContent()).not.toContain('s3cret-basic');
    expect(await card.getByRole('checkbox', { name: 'Enable SSL authentication' }).isDisabled()).toBe(true);
    await expectAccessible(page);

    // Upload a certificate through its page, come back: the switch is enabled and turns on.
    await nav.getByRole('link', { name: 'Outbound certificates' }).click();
    await page.getByRole('button', { name: 'Upload certificate' }).click();
    const pki = await makePki('Hooli');
    const leaf = await issueLeaf(pki.intermediate, { cn: 'hooli-client' });
    await page.getByLabel('Certificate file (.p12, .pfx or PEM)').setInputFiles({
      name: 'hooli.p12',
      mimeType: 'application/x-pkcs12',
      buffer: makePkcs12(leaf, [pki.intermediate], 'pw-hooli'),
    });
    await page.getByLabel('Password').fill('pw-hooli');
    await page.getByLabel('Name', { exact: true }).fill('Hooli client');
    await page.getByRole('button', { name: 'Upload and save' }).click();
    await page.locator('.toast', { hasText: 'uploaded and saved' }).waitFor();
    await nav.getByRole('link', { name: 'External API requests' }).click();
    const cardSsl = card.getByRole('checkbox', { name: 'Enable SSL authentication' });
    await expect.poll(() => cardSsl.isEnabled()).toBe(true);
    await cardSsl.click();
    await page.locator('.toast', { hasText: 'SSL authentication enabled for Partner API' }).waitFor();
    const saved = (await (await server.call('/v1/tenants/hooli/connections')).json()) as {
      items: { clientCertificate: { enabled: boolean } }[];
    };
    expect(saved.items[0]?.clientCertificate.enabled).toBe(true);
    await context.close();
  });

  test('operator console: a wrong token is refused; then tenants are created and searched, expiring certificates across tenants are listed, and a portal link for a member opens that portal', async () => {
    const server = suite.server();
    await createTenant(server, 'soylent');
    const pki = await makePki('Console');
    const leaf = await issueLeaf(pki.intermediate, {
      cn: 'soylent-client',
      notAfter: new Date(Date.now() + 3 * DAY_MS),
    });
    await server.call('/v1/tenants/soylent/identities', {
      method: 'POST',
      json: {
        name: 'Soylent client',
        certificatePem: leaf.certPem,
        privateKeyPem: leaf.keyPem,
        chainPem: pki.intermediate.certPem,
      },
    });
    const context = await suite.browser().newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/ui/`);
    await page.getByLabel('Operator token').fill('not-the-operator-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#token-error').waitFor();
    await expectAccessible(page);
    await page.getByLabel('Operator token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Operator console' }).waitFor();
    await expect.poll(() => page.getByText('Health:').textContent()).toContain('ready');

    await page.getByLabel('Tenant id').fill('tyrell');
    await page.getByLabel('Tenant name').fill('Tyrell Corporation');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByText('API key of tyrell (shown once)').waitFor();
    await page.getByLabel('Search tenants').fill('tyr');
    await expect.poll(() => page.locator('.tenants li').count()).toBe(1);
    expect(await page.locator('.tenants li').textContent()).toContain('Tyrell Corporation');
    await page.getByLabel('Search tenants').fill('');

    const expiring = page.getByRole('list', { name: 'Expiring certificates' });
    await expect
      .poll(() => expiring.textContent())
      .toContain('soylent: outbound certificate “Soylent client” expires in 3 days');
    await page.getByLabel('Within this many days').fill('1');
    await expect.poll(() => expiring.locator('li').count()).toBe(0);
    await expectAccessible(page);

    // The operator opens a tenant's pages from the list, and comes back to the console.
    await page.locator('.tenants').getByRole('link', { name: 'soylent Ltd' }).click();
    await page.getByRole('heading', { level: 1, name: 'Outbound certificates' }).waitFor();
    await expect.poll(() => page.getByLabel('Active certificate').textContent()).toContain('Soylent client');
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Console' }).click();
    await page.getByRole('heading', { level: 1, name: 'Operator console' }).waitFor();

    await page.getByRole('button', { name: 'Members of soylent' }).click();
    await page.getByLabel('Member e-mail').fill('sol@soylent.example');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByRole('button', { name: 'Portal link for sol@soylent.example' }).click();
    const link = await page.getByLabel(/Portal link for sol@soylent.example/).inputValue();
    expect(link).toContain('/v1/portal/');
    const member = await suite.browser().newContext();
    const portal = await member.newPage();
    await portal.goto(link);
    await portal.getByRole('heading', { level: 1, name: 'Outbound certificates' }).waitFor();
    expect(await portal.getByLabel('Active certificate').textContent()).toContain('Soylent client');
    await member.close();
    await context.close();
  });
});
