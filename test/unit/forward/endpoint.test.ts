import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import { DispatcherCache } from '../../../src/forward/dispatchers.js';
import { ForwardEndpoint, isForwardTarget } from '../../../src/forward/endpoint.js';
import { createMetrics } from '../../../src/http/metrics.js';
import { ALL_PERMISSIONS } from '../../../src/people/permissions.js';

describe('isForwardTarget', () => {
  test.each([
    ['/v1/runtime/forward', true],
    ['/v1/runtime/forward?x=1', true],
    ['/v1/runtime/forward/', false],
    ['/v1/runtime/forwarded', false],
    ['//v1/runtime/forward', false],
    ['/v1/runtime/forward;x', false],
    ['/v1/runtime/%66orward', false],
    ['http://host/v1/runtime/forward', false],
    [undefined, false],
  ])('%s → %s', (target, expected) => {
    expect(isForwardTarget(target)).toBe(expected);
  });
});

describe('ForwardEndpoint on a real listener', () => {
  const planned: string[] = [];
  const metrics = createMetrics();
  const dispatchers = new DispatcherCache({
    timeouts: {
      connectTimeoutMs: 1_000,
      headersTimeoutMs: 1_000,
      bodyTimeoutMs: 1_000,
      idleTimeoutMs: 1_000,
    },
    allowPrivate: true,
    idleAgentTtlMs: 0,
  });
  const endpoint = new ForwardEndpoint({
    tenants: {
      authenticate: async (token) => {
        if (token !== 'good') throw new AppError('unauthorized');
        return { kind: 'tenant', tenantId: 'acme', actor: 'api-key:key_1', permissions: ALL_PERMISSIONS };
      },
    },
    runtime: {
      plan: async (tenantId, service) => {
        planned.push(`${tenantId}/${service}`);
        throw new AppError('no_mapping');
      },
    },
    dispatchers,
    metrics,
    forwardAllowPrivate: true,
    logger: pino({ level: 'silent' }),
  });
  const server = http.createServer((req, res) => endpoint.serve(req, res));
  let base: string;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await dispatchers.close();
  });

  function send(
    headers: Record<string, string | string[]>,
  ): Promise<http.IncomingMessage & { body: string }> {
    return new Promise((resolve, reject) => {
      const request = http.request(`${base}/v1/runtime/forward`, { headers, agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve(Object.assign(res, { body })));
      });
      request.on('error', reject);
      request.end();
    });
  }

  const fields = { 'twoway-service': 'api', 'twoway-forward-url': 'https://127.0.0.1:1/x' };

  test('the token is checked first, then the fields; only authenticated forwards are counted', async () => {
    const counted = async () =>
      (await metrics.forwardRequests.get()).values.reduce((sum, v) => sum + v.value, 0);
    const before = await counted();
    const refused = await send({
      ...fields,
      'twoway-service': ['api', 'other'],
      authorization: 'Bearer bad',
    });
    expect([refused.statusCode, refused.headers['twoway-error']]).toEqual([401, 'unauthorized']);
    expect(await counted()).toBe(before);
    const repeated = await send({
      ...fields,
      'twoway-service': ['api', 'other'],
      authorization: 'Bearer good',
    });
    expect([repeated.statusCode, repeated.headers['twoway-error']]).toEqual([400, 'bad_request']);
    expect(JSON.parse(repeated.body)).toMatchObject({ detail: 'Send twoway-service once.' });
    const planned403 = await send({ ...fields, authorization: 'Bearer good' });
    expect([planned403.statusCode, planned403.headers['twoway-error']]).toEqual([403, 'no_mapping']);
    expect(planned).toEqual(['acme/api']);
    expect(await counted()).toBe(before + 2);
  });

  test('after close() every forward is answered 503 not_ready with Connection: close', async () => {
    endpoint.close();
    const answer = await send({ ...fields, authorization: 'Bearer good' });
    expect([answer.statusCode, answer.headers['twoway-error'], answer.headers.connection]).toEqual([
      503,
      'not_ready',
      'close',
    ]);
    expect(planned).toEqual(['acme/api']);
  });
});
