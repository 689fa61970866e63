import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger, LogLimiter } from '../../../src/shared/logger.js';

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

describe('LogLimiter', () => {
  test('allows a burst, then the refill rate, and counts what it held back', () => {
    let now = 0;
    const limiter = new LogLimiter({ burst: 2, perMinute: 6, now: () => now });
    expect([limiter.take(), limiter.take(), limiter.take(), limiter.take()]).toEqual([0, 0, null, null]);
    now += 5_000; // half a token
    expect(limiter.take()).toBeNull();
    now += 5_000; // one token: 10 s at 6 a minute
    expect(limiter.take()).toBe(3);
    expect(limiter.take()).toBeNull();
    now += 3_600_000; // a long quiet spell refills the burst, no more
    expect([limiter.take(), limiter.take(), limiter.take()]).toEqual([1, 0, null]);
  });
});
