import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import { MAX_CHAIN_CERTIFICATES } from '../../../src/certificates/chain.js';
import { buildChain, readIdentity } from '../../../src/certificates/index.js';
import { type CertKey, makeIntermediate, makePki, makeRoot, type TestPki } from '../../fixtures/pki.js';
import { codeOf, DAY_MS, errorOf, issue } from './helpers.js';

let pki: TestPki;
let root: CertKey;
let mid: CertKey;
let sub: CertKey;
let deepLeaf: CertKey;
let leaf: CertKey;
const x = (c: CertKey) => new X509Certificate(c.certPem);
const names = (certs: X509Certificate[]) => certs.map((c) => c.subject);

beforeAll(async () => {
  pki = await makePki('Chain Test');
  leaf = await pki.leaf({ cn: 'leaf.chain.example' });
  // root → mid → sub → deepLeaf: two intermediates (no pathLenConstraint).
  root = await makeRoot('Deep Root');
  const validity = { notBefore: new Date(Date.now() - DAY_MS), notAfter: new Date(Date.now() + 30 * DAY_MS) };
  mid = await issue(root, { cn: 'Deep Mid', ca: true, ...validity });
  sub = await issue(mid, { cn: 'Deep Sub', ca: true, ...validity });
  deepLeaf = await pki.leaf({ cn: 'deep.leaf.example', issuer: sub });
});

describe('buildChain', () => {
  test('orders a shuffled chain leaf-first and returns the self-signed root apart', () => {
    const built = buildChain(x(deepLeaf), [x(root), x(sub), x(mid)]);
    expect(names(built.chain)).toEqual(['CN=Deep Sub', 'CN=Deep Mid']);
    expect(built.root?.subject).toBe('CN=Deep Root');
  });

  test('a chain need not reach a root', () => {
    const built = buildChain(x(deepLeaf), [x(mid), x(sub)]);
    expect(names(built.chain)).toEqual(['CN=Deep Sub', 'CN=Deep Mid']);
    expect(built.root).toBeUndefined();
    expect(buildChain(x(leaf), []).chain).toEqual([]);
  });

  test('ignores duplicates and copies of the leaf', () => {
    const built = buildChain(x(leaf), [x(pki.intermediate), x(leaf), x(pki.intermediate), x(pki.root)]);
    expect(names(built.chain)).toEqual(['CN=Chain Test Intermediate']);
  });

  test('takes at most MAX_CHAIN_CERTIFICATES candidates, refused before any signature is tried', async () => {
    // Same names everywhere, so every candidate would be tried for every link (quadratic).
    const lookalikes = await Promise.all(
      Array.from({ length: MAX_CHAIN_CERTIFICATES + 1 }, () =>
        makeIntermediate(pki.root, 'Chain Test Intermediate'),
      ),
    );
    const failure = errorOf(() => buildChain(x(leaf), lookalikes.map(x)));
    expect(failure.code).toBe('chain_mismatch');
    expect(failure.message).toContain(`at most ${MAX_CHAIN_CERTIFICATES}`);
    // Up to the limit, the real intermediate is still found among lookalikes (which are then leftovers).
    const within = [...lookalikes.slice(0, MAX_CHAIN_CERTIFICATES - 1).map(x), x(pki.intermediate)];
    expect(errorOf(() => buildChain(x(leaf), within)).message).toContain('is not part of the');
  });

  test('chain_mismatch for a missing link: the intermediate between leaf and root is absent', () => {
    expect(codeOf(() => buildChain(x(deepLeaf), [x(root), x(mid)]))).toBe('chain_mismatch');
  });

  test('chain_mismatch for an unrelated certificate', () => {
    const failure = errorOf(() => buildChain(x(leaf), [x(pki.intermediate), x(root)]));
    expect(failure.code).toBe('chain_mismatch');
    expect(failure.message).toContain('CN=Deep Root');
    expect(failure.message).toContain(root.fingerprintSha256);
  });

  test('chain_mismatch for a wrong link: same issuer name, other key', async () => {
    const impostor = await makeIntermediate(pki.root, 'Chain Test Intermediate');
    expect(x(leaf).checkIssued(x(impostor))).toBe(true); // names match…
    expect(codeOf(() => buildChain(x(leaf), [x(impostor)]))).toBe('chain_mismatch'); // …the signature does not
    expect(codeOf(() => buildChain(x(leaf), [x(impostor), x(pki.intermediate)]))).toBe('chain_mismatch');
  });

  test('a self-signed leaf has no chain; anything given with it is a mismatch', async () => {
    const self = await pki.leaf({ cn: 'self', issuer: 'self' });
    expect(buildChain(x(self), []).chain).toEqual([]);
    expect(codeOf(() => buildChain(x(self), [x(pki.root)]))).toBe('chain_mismatch');
  });
});

describe('readIdentity and the chain', () => {
  test('returns the reordered chain without the root, in certificatesPem too', () => {
    const file = Buffer.from(
      `${root.certPem}\n${deepLeaf.keyPem}${mid.certPem}${deepLeaf.certPem}\n${sub.certPem}`,
    );
    const identity = readIdentity({ file }, { now: new Date() });
    expect(names(identity.chain)).toEqual(['CN=Deep Sub', 'CN=Deep Mid']);
    expect(identity.chainSummary.map((c) => [c.subject, c.issuer])).toEqual([
      ['CN=Deep Sub', 'CN=Deep Mid'],
      ['CN=Deep Mid', 'CN=Deep Root'],
    ]);
    const pems = identity.certificatesPem.split(/(?<=-----END CERTIFICATE-----\n)/);
    expect(pems.map((pem) => new X509Certificate(pem).subject)).toEqual([
      'CN=deep.leaf.example',
      'CN=Deep Sub',
      'CN=Deep Mid',
    ]);
  });

  test('chain_mismatch when a link is missing from the chain part', () => {
    const upload = {
      certificate: Buffer.from(deepLeaf.certPem),
      privateKey: Buffer.from(deepLeaf.keyPem),
      chain: Buffer.from(`${mid.certPem}${root.certPem}`),
    };
    expect(codeOf(() => readIdentity(upload, { now: new Date() }))).toBe('chain_mismatch');
  });
});
