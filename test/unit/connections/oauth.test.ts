import { describe, expect, it } from 'vitest';
import { basicClientCredentials, sanitiseEndpointText } from '../../../src/connections/oauth.js';

describe('basicClientCredentials', () => {
  it('form-urlencodes the client id and secret before base64 (RFC 6749 §2.3.1)', () => {
    const header = basicClientCredentials('app:1', 'p@ss word+ü/');
    expect(header.startsWith('Basic ')).toBe(true);
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    // The id's colon is encoded, so the first colon separates id and secret.
    expect(decoded).toBe('app%3A1:p%40ss+word%2B%C3%BC%2F');
  });
});

describe('sanitiseEndpointText', () => {
  it('keeps printable ASCII only', () => {
    expect(sanitiseEndpointText('bad\r\nX-Injected: 1\u0000\u00e9\u202e', 100)).toBe('bad??X-Injected: 1???');
  });

  it('bounds the length', () => {
    const text = sanitiseEndpointText('x'.repeat(1000), 50);
    expect(text.length).toBe(50);
    expect(text.endsWith('...')).toBe(true);
  });

  it('replaces secrets before cutting, so no prefix of one survives at the cut', () => {
    const secret = 'S3cr3t-Value-0123456789';
    const text = sanitiseEndpointText(`${'a'.repeat(30)}${secret}`, 40, [secret]);
    expect(text).not.toContain('S3cr3t');
    expect(sanitiseEndpointText(`wrong secret ${secret} given`, 100, [secret])).toBe(
      'wrong secret [redacted] given',
    );
  });
});
