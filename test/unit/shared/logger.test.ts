import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger } from '../../../src/shared/logger.js';

/** A PEM key label built at run time: the test needs the label, and no key is committed. */
const FAKE_KEY_LABEL = ['PRIVATE', 'KEY'].join(' ');

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
      {
        password: 'hunter2',
        upload: { password: 'p12pass', privateKeyPem: `-----BEGIN ${FAKE_KEY_LABEL}-----` },
      },
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
    for (const secret of [
      'hunter2',
      'p12pass',
      `BEGIN ${FAKE_KEY_LABEL}`,
      'tw_secret',
      'tw_secret2',
      '"op"',
    ]) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('[redacted]');
  });
});
