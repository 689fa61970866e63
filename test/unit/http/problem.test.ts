import Fastify from 'fastify';
import { describe, expect, test } from 'vitest';
import { ParseQueueFullError } from '../../../src/certificates/index.js';
import { errorHandler } from '../../../src/http/problem.js';

describe('the error handler', () => {
  test('a full parse queue is answered 429 parse_queue_full with Retry-After', async () => {
    const app = Fastify();
    app.setErrorHandler(errorHandler);
    app.post('/upload', async () => {
      throw new ParseQueueFullError('Too many uploads are waiting to be checked; retry later.', 2);
    });
    const response = await app.inject({ method: 'POST', url: '/upload' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('2');
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ code: 'parse_queue_full', status: 429 });
    await app.close();
  });
});
