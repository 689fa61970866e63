/**
 * `/metrics` names every tenant and object id, so it is not public: the main listener asks for the
 * metrics token (TWOWAY_METRICS_TOKEN) or the operator token, and TWOWAY_METRICS_LISTEN serves it on
 * a listener of its own.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OPERATOR_TOKEN, startTestTwoway, type TestTwoway } from '../helpers/twoway.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

async function scrape(url: string, token?: string, init: RequestInit = {}) {
  const response = await fetch(url, {
    ...init,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await response.text();
  const code = text.startsWith('{') ? (JSON.parse(text) as { code?: string }).code : undefined;
  return { status: response.status, code, text };
}

describe('/metrics on the main listener', () => {
  let twoway: TestTwoway;
  let apiKey: string;

  beforeAll(async () => {
    twoway = await startTestTwoway({ TWOWAY_METRICS_TOKEN: METRICS_TOKEN });
    const created = await twoway.call('/v1/tenants', {
      method: 'POST',
      json: { id: 'hidden-tenant', name: 'Hidden' },
    });
    apiKey = ((await created.json()) as { apiKey: string }).apiKey;
  });
  afterAll(() => twoway?.close());

  test('without a token, with a wrong one or with a tenant API key: 401, and nothing of the metrics', async () => {
    for (const token of [undefined, 'wrong-token-0123456789abcdef', apiKey]) {
      const answer = await scrape(`${twoway.url}/metrics`, token);
      expect(answer.status).toBe(401);
      expect(answer.code).toBe('unauthorized');
      expect(answer.text).not.toContain('twoway_');
    }
  });

  test('the metrics token and the operator token read them', async () => {
    for (const token of [METRICS_TOKEN, OPERATOR_TOKEN]) {
      const answer = await scrape(`${twoway.url}/metrics`, token);
      expect(answer.status).toBe(200);
      expect(answer.text).toContain('twoway_process_');
    }
  });
});

describe('/metrics with neither a metrics token nor an operator token', () => {
  let twoway: TestTwoway;
  beforeAll(async () => {
    twoway = await startTestTwoway({ TWOWAY_OPERATOR_TOKEN: '' });
  });
  afterAll(() => twoway?.close());

  test('the main listener refuses everyone', async () => {
    expect(twoway.config.operatorToken).toBeUndefined();
    const answer = await scrape(`${twoway.url}/metrics`);
    expect([answer.status, answer.code]).toEqual([401, 'unauthorized']);
    expect((await scrape(`${twoway.url}/metrics`, OPERATOR_TOKEN)).status).toBe(401);
  });
});

describe('TWOWAY_METRICS_LISTEN', () => {
  let open: TestTwoway;
  let guarded: TestTwoway;
  beforeAll(async () => {
    open = await startTestTwoway({ TWOWAY_METRICS_LISTEN: '127.0.0.1:0' });
    guarded = await startTestTwoway({
      TWOWAY_METRICS_LISTEN: '127.0.0.1:0',
      TWOWAY_METRICS_TOKEN: METRICS_TOKEN,
    });
  });
  afterAll(async () => {
    await open?.close();
    await guarded?.close();
  });

  test('serves /metrics alone on its own port, without a token when none is configured', async () => {
    const base = open.metricsUrl as string;
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(base).not.toBe(open.url);
    const answer = await scrape(`${base}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('twoway_process_');
    expect((await scrape(`${base}/healthz`)).status).toBe(404);
    expect((await scrape(`${base}/v1/tenants`, OPERATOR_TOKEN)).status).toBe(404);
    expect((await scrape(`${base}/metrics`, undefined, { method: 'POST' })).status).toBe(405);
    // The main listener still asks for a token.
    expect((await scrape(`${open.url}/metrics`)).status).toBe(401);
  });

  test('asks for the metrics token when one is configured', async () => {
    const base = guarded.metricsUrl as string;
    expect((await scrape(`${base}/metrics`)).status).toBe(401);
    expect((await scrape(`${base}/metrics`, 'wrong-token-0123456789abcdef')).status).toBe(401);
    expect((await scrape(`${base}/metrics`, METRICS_TOKEN)).status).toBe(200);
  });

  test('a malformed address is a configuration problem', async () => {
    await expect(startTestTwoway({ TWOWAY_METRICS_LISTEN: '9464' })).rejects.toThrow(/TWOWAY_METRICS_LISTEN/);
    await expect(startTestTwoway({ TWOWAY_METRICS_LISTEN: '127.0.0.1:99999' })).rejects.toThrow(
      /TWOWAY_METRICS_LISTEN/,
    );
  });
});
