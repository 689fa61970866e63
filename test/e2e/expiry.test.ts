import { resolve } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../helpers/lifecycle.js';
import { startTestTwoway, type TestTwoway } from '../helpers/twoway.js';
import { expectAccessible, launch } from './harness.js';

const MINUTE = 60_000;

// In process, so the test can move the server's clock: the built UI (dist/ui) on a Twoway from src/.
describe('portal links and sessions expire', () => {
  const clock = new ManualClock();
  let twoway: TestTwoway;
  let browser: Browser;

  async function link(memberId: string): Promise<string> {
    const member = await twoway.call(`/v1/tenants/wayne/members/${memberId}`, {
      method: 'PUT',
      json: { email: `${memberId}@wayne.example`, roles: ['admin'] },
    });
    expect([200, 201]).toContain(member.status);
    const response = await twoway.call('/v1/tenants/wayne/portal-links', {
      method: 'POST',
      json: { memberId },
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { url: string }).url;
  }

  beforeAll(async () => {
    [twoway, browser] = await Promise.all([
      startTestTwoway({}, { clock, uiRoot: resolve(import.meta.dirname, '../../dist/ui') }),
      launch(),
    ]);
    expect(
      (await twoway.call('/v1/tenants', { method: 'POST', json: { id: 'wayne', name: 'Wayne' } })).status,
    ).toBe(201);
  });
  afterAll(async () => {
    await browser?.close();
    await twoway?.close();
  });

  test('a portal link opened after its five minutes is refused and signs nobody in', async () => {
    const url = await link('bruce');
    clock.advance(5 * MINUTE + 1000);
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = await page.goto(url);
    expect(response?.status()).toBe(404);
    expect(await page.textContent('body')).toContain('portal_link_invalid');
    await page.goto(`${twoway.url}/ui/`);
    await page.getByRole('heading', { level: 1, name: 'Sign in to Twoway' }).waitFor();
    await context.close();
  });

  test('an idle session ends: the next click lands on the sign-in page, which says so', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(await link('alfred'));
    await page.getByRole('heading', { level: 1, name: 'Outbound certificates' }).waitFor();
    clock.advance(31 * MINUTE);
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Mappings' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign in to Twoway' }).waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('Your session ended');
    await expectAccessible(page);
    await context.close();
  });
});
