import { describe, expect, test } from 'vitest';
import { ParseQueueFullError, TenantQueue } from '../../../src/certificates/parse-queue.js';
import { toAppError } from '../../../src/errors/app-error.js';

const limits = { maxQueued: 5, maxQueuedPerTenant: 3, retryAfterSeconds: 2 };

function drainInOrder<T>(queue: TenantQueue<T>): T[] {
  const out: T[] = [];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) out.push(item);
  return out;
}

describe('the parse queue', () => {
  test('tenants take turns: a burst from one tenant does not hold up another tenant', () => {
    const queue = new TenantQueue<string>(limits);
    for (const item of ['a1', 'a2', 'a3']) queue.push('a', item);
    queue.push('b', 'b1');
    queue.push('c', 'c1');
    expect(queue.size).toBe(5);
    expect(drainInOrder(queue)).toEqual(['a1', 'b1', 'c1', 'a2', 'a3']);
    expect(queue.size).toBe(0);
  });

  test('a tenant arriving later joins the turn order behind those waiting', () => {
    const queue = new TenantQueue<string>(limits);
    queue.push('a', 'a1');
    queue.push('a', 'a2');
    expect(queue.shift()).toBe('a1');
    queue.push('b', 'b1');
    queue.push('a', 'a3');
    expect(drainInOrder(queue)).toEqual(['a2', 'b1', 'a3']);
  });

  test('full per tenant or in total: parse_queue_full, a 429 with Retry-After', () => {
    const queue = new TenantQueue<string>(limits);
    for (const item of ['a1', 'a2', 'a3']) queue.push('a', item);
    const perTenant = (() => {
      try {
        queue.push('a', 'a4');
      } catch (err) {
        return err;
      }
    })();
    expect(perTenant).toBeInstanceOf(ParseQueueFullError);
    queue.push('b', 'b1');
    queue.push('c', 'c1');
    expect(() => queue.push('d', 'd1')).toThrow(ParseQueueFullError);
    const problem = toAppError(perTenant);
    expect(problem).toMatchObject({ code: 'parse_queue_full', status: 429, retryAfterSeconds: 2 });
    // Another tenant is served once the line moves.
    queue.shift();
    queue.push('d', 'd1');
    expect(queue.drain().sort()).toEqual(['a2', 'a3', 'b1', 'c1', 'd1']);
    expect(queue.size).toBe(0);
  });
});
