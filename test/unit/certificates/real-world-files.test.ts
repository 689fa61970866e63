/**
 * Files as users really have them: saved by Notepad, issued with narrow key usages, kept in Java
 * keystores, exported without a MAC.
 */
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, test } from 'vitest';
import { readIdentity } from '../../../src/certificates/index.js';
import { type CertKey, makePki, type TestPki } from '../../fixtures/pki.js';
import { codeOf } from './helpers.js';

let pki: TestPki;
let leaf: CertKey;
const now = () => new Date();
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

beforeAll(async () => {
  pki = await makePki('Real World');
  leaf = await pki.leaf({ cn: 'real.client.example' });
});

describe('a UTF-8 byte-order mark (Windows Notepad) hides nothing', () => {
  test('a bundle, key first, saved with a BOM', () => {
    const file = Buffer.concat([
      BOM,
      Buffer.from(`${leaf.keyPem}${leaf.certPem}\n${pki.intermediate.certPem}`),
    ]);
    expect(readIdentity({ file }, { now: now() }).summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
  });

  test('separate certificate, key and chain parts, each saved with a BOM', () => {
    const upload = {
      certificate: Buffer.concat([BOM, Buffer.from(leaf.certPem)]),
      privateKey: Buffer.concat([BOM, Buffer.from(leaf.keyPem)]),
      chain: Buffer.concat([BOM, Buffer.from(pki.intermediate.certPem)]),
    };
    const identity = readIdentity(upload, { now: now() });
    expect(identity.summary.fingerprintSha256).toBe(leaf.fingerprintSha256);
    expect(identity.chain).toHaveLength(1);
  });
});

describe('key usage', () => {
  test('digital_signature_not_allowed: a leaf whose keyUsage lacks digitalSignature', async () => {
    const file = (c: CertKey) => ({ file: Buffer.from(`${c.certPem}\n${c.keyPem}`) });
    const encipherOnly = await pki.leaf({
      cn: 'key encipherment only',
      key: 'rsa2048',
      keyUsage: KeyUsageFlags.keyEncipherment,
    });
    expect(codeOf(() => readIdentity(file(encipherOnly), { now: now() }))).toBe(
      'digital_signature_not_allowed',
    );
    const agreement = await pki.leaf({ cn: 'key agreement only', keyUsage: KeyUsageFlags.keyAgreement });
    expect(codeOf(() => readIdentity(file(agreement), { now: now() }))).toBe('digital_signature_not_allowed');
    const signing = await pki.leaf({ cn: 'signing', keyUsage: KeyUsageFlags.digitalSignature });
    expect(codeOf(() => readIdentity(file(signing), { now: now() }))).toBe('ok');
  });
});
