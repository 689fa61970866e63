import { describe, expect, test } from 'vitest';
import { readCertificateInput } from '../../../src/client-certificates/upload.js';
import { makePki } from '../../fixtures/pki.js';

describe('readCertificateInput', () => {
  test('reads a certificate saved with a UTF-8 byte-order mark, alone or before a chain', async () => {
    const pki = await makePki('Client Upload');
    const leaf = await pki.leaf({ cn: 'bom client' });
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const text of [leaf.certPem, `${leaf.certPem}\n${pki.intermediate.certPem}`]) {
      const cert = readCertificateInput(Buffer.concat([bom, Buffer.from(text)]));
      expect(cert.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(leaf.fingerprintSha256);
    }
  });
});
