import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';

describe('logger redaction', () => {
  test('passwords, keys, tokens and Authorization headers never reach a line', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _e, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger('info', sink);
    logger.info(
      { password: 'hunter2', upload: { password: 'p12pass', privateKeyPem: '-----BEGIN PRIVATE KEY-----' } },
      'uploaded',
    );
    logger.info(
      {
        req: { headers: { authorization: 'Bearer tw_secret' } },
        apiKey: 'tw_secret2',
        config: { operatorToken: 'op' },
      },
      'req',
    );
    const all = lines.join('\n');
    for (const secret of ['hunter2', 'p12pass', 'BEGIN PRIVATE KEY', 'tw_secret', 'tw_secret2', '"op"']) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('[redacted]');
  });
});
