import { describe, expect, test } from 'vitest';
import { build, buildInTest, createTenant } from '../helpers/twoway.js';

/** True when the HTTP listener at `url` still accepts connections. */
async function listening(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`);
    return true;
  } catch {
    return false;
  }
}

describe('build() closes the Twoway of its describe block when the block ends', () => {
  let url = '';

  describe('a block with its own Twoway', () => {
    const twoway = build();

    test('it is up for the tests of the block', async () => {
      url = twoway.url;
      expect(await listening(url)).toBe(true);
    });

    test('createTenant returns an API key that acts on that tenant only', async () => {
      const apiKey = await createTenant(twoway, 'helper-co');
      expect(apiKey).toMatch(/^tw_/);
      expect((await twoway.call('/v1/tenants/helper-co/identities', { token: apiKey })).status).toBe(200);
      await createTenant(twoway, 'other-co');
      expect((await twoway.call('/v1/tenants/other-co/identities', { token: apiKey })).status).toBe(404);
    });
  });

  test('and it is closed once the block is done', async () => {
    expect(url).not.toBe('');
    expect(await listening(url)).toBe(false);
  });
});

describe('buildInTest() closes its Twoway when the test ends', () => {
  let url = '';

  test('up during the test', async () => {
    const twoway = await buildInTest();
    url = twoway.url;
    expect(await listening(url)).toBe(true);
  });

  test('closed after it; a test may close it itself, the teardown then does nothing more', async () => {
    expect(url).not.toBe('');
    expect(await listening(url)).toBe(false);
    const twoway = await buildInTest();
    await twoway.close();
    expect(await listening(twoway.url)).toBe(false);
  });
});
