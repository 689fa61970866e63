/**
 * The upload parser's worker threads and queue: tenants take turns, a full queue refuses at once,
 * and the red-team upload is refused in the worker without holding it.
 */
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { IdentityParser, ParseQueueFullError } from '../../src/certificates/index.js';
import { type CertKey, ed25519KeyFlood, makePki } from '../fixtures/pki.js';

let leaf: CertKey;
const parsers: IdentityParser[] = [];
const upload = () => ({ file: Buffer.from(`${leaf.keyPem}${leaf.certPem}`) });

beforeAll(async () => {
  const pki = await makePki('Parser');
  leaf = await pki.leaf({ cn: 'parser.client.example', issuer: 'self' });
});

afterEach(async () => {
  for (const parser of parsers.splice(0)) await parser.close();
});

function parser(options: ConstructorParameters<typeof IdentityParser>[0]): IdentityParser {
  const made = new IdentityParser(options);
  parsers.push(made);
  return made;
}

describe('IdentityParser', () => {
  test('uploads beyond the threads take turns by tenant; a full queue refuses at once', async () => {
    const p = parser({ maxThreads: 1, maxQueued: 3, maxQueuedPerTenant: 2, retryAfterSeconds: 3 });
    const done: string[] = [];
    const refused: string[] = [];
    const run = (tenant: string, label: string) =>
      p.parse(tenant, upload(), new Date()).then(
        (identity) => {
          expect(identity.summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
          done.push(label);
        },
        (err: unknown) => {
          expect(err).toBeInstanceOf(ParseQueueFullError);
          expect((err as ParseQueueFullError).retryAfterSeconds).toBe(3);
          refused.push(label);
        },
      );
    // All submitted before any finishes: a1 runs, a2 and a3 wait, a4 passes tenant a's share, b1
    // waits, c1 finds the queue full.
    await Promise.all([
      run('a', 'a1'),
      run('a', 'a2'),
      run('a', 'a3'),
      run('a', 'a4'),
      run('b', 'b1'),
      run('c', 'c1'),
    ]);
    expect(refused.sort()).toEqual(['a4', 'c1']);
    expect(done).toEqual(['a1', 'a2', 'b1', 'a3']);
  });

  test('the red-team upload (a megabyte of Ed25519 keys) is refused in the worker', async () => {
    const p = parser({ maxThreads: 1 });
    await expect(p.parse('a', { file: ed25519KeyFlood() }, new Date())).rejects.toMatchObject({
      code: 'multiple_private_keys',
    });
    // The thread is free again for the next tenant.
    expect((await p.parse('b', upload(), new Date())).summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
  });
});
