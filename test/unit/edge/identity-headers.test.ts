import { describe, expect, test } from 'vitest';
import { clientCertHeader, identityHeaders, xfcc } from '../../../src/edge/identity-headers.js';

const base = {
  tenantId: 'acme',
  fingerprintSha256: 'ab'.repeat(32),
  der: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]),
  subject: 'CN=client,O=Acme',
  subjectAltNames: [] as string[],
};

describe('identity headers', () => {
  test('XFCC is Envoy format: Hash, quoted Subject, then URI and DNS names', () => {
    expect(
      xfcc({ ...base, subjectAltNames: ['DNS:a.example', 'URI:urn:twoway:tenant:acme', 'IP:127.0.0.1'] }),
    ).toBe(`Hash=${'ab'.repeat(32)};Subject="CN=client,O=Acme";URI=urn:twoway:tenant:acme;DNS=a.example`);
  });

  test('a Subject never holds a raw quote, backslash or non-ASCII byte', () => {
    // formatName (RFC 4514) writes `"` as `\"` and `\` as `\\`; the header writes both as hex pairs.
    const value = xfcc({ ...base, subject: 'CN=evil\\"\\,x\\\\y,O=Müller\n' });
    expect(value).toBe(`Hash=${'ab'.repeat(32)};Subject="CN=evil\\22\\,x\\5Cy,O=M\\C3\\BCller\\0A"`);
    expect(value).toMatch(/^[\x20-\x7e]+$/);
  });

  test('URI values with separators are quoted; control bytes are percent-encoded', () => {
    expect(xfcc({ ...base, subjectAltNames: ['URI:spiffe://x/a;b=c,"d"', 'URI:http://x/\r\ny'] })).toBe(
      `Hash=${'ab'.repeat(32)};Subject="CN=client,O=Acme";URI="spiffe://x/a;b=c,\\"d\\"";URI=http://x/%0D%0Ay`,
    );
  });

  test('a literal % is escaped as %25, so percent-decoding gives back the exact name', () => {
    const names = ['URI:urn:twoway:tenant%3Aacme', 'URI:https://x/100%', 'DNS:a%2Eexample'];
    const value = xfcc({ ...base, subjectAltNames: names });
    expect(value).toBe(
      `Hash=${'ab'.repeat(32)};Subject="CN=client,O=Acme";URI=urn:twoway:tenant%253Aacme;URI=https://x/100%25;DNS=a%252Eexample`,
    );
    const decoded = [...value.matchAll(/;(URI|DNS)=([^;]*)/g)].map(
      ([, kind, encoded]) => `${kind}:${decodeURIComponent(encoded as string)}`,
    );
    expect(decoded).toEqual(names);
  });

  test('a backslash in a name cannot close the quotes and smuggle in another URI', () => {
    const value = xfcc({ ...base, subjectAltNames: ['URI:x\\";URI=urn:twoway:tenant:victim;a=\\"'] });
    expect(value).toBe(
      `Hash=${'ab'.repeat(32)};Subject="CN=client,O=Acme";URI="x\\\\\\";URI=urn:twoway:tenant:victim;a=\\\\\\""`,
    );
    // Read back by RFC 9110 quoted-string rules, the URI element is the whole name, nothing more.
    const quoted = /;URI="((?:[^"\\]|\\.)*)"$/.exec(value)?.[1] ?? '';
    expect(quoted.replace(/\\(.)/g, '$1')).toBe('x\\";URI=urn:twoway:tenant:victim;a=\\"');
  });

  test('Client-Cert is an RFC 8941 byte sequence of the DER; the header list is Twoway-Tenant, XFCC, Client-Cert', () => {
    expect(clientCertHeader(base.der)).toBe(':MAMCAQE=:');
    const headers = identityHeaders(base);
    expect(headers.filter((_, i) => i % 2 === 0)).toEqual([
      'Twoway-Tenant',
      'X-Forwarded-Client-Cert',
      'Client-Cert',
    ]);
    expect(headers[1]).toBe('acme');
  });

  test('Client-Cert-Chain lists the validating certificates as byte sequences, only when there are some', () => {
    const issuing = Buffer.from([0x30, 0x01, 0x00]);
    const root = Buffer.from([0x30, 0x01, 0x01]);
    const withChain = identityHeaders({ ...base, chain: [issuing, root] });
    expect(withChain.slice(-2)).toEqual(['Client-Cert-Chain', ':MAEA:, :MAEB:']);
    expect(identityHeaders({ ...base, chain: [] })).not.toContain('Client-Cert-Chain');
    expect(identityHeaders(base)).not.toContain('Client-Cert-Chain');
  });
});
