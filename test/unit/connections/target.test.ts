import { describe, expect, test } from 'vitest';
import { compileBase, connectionTarget, normaliseBaseUrl } from '../../../src/connections/target.js';
import { AppError } from '../../../src/errors/app-error.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
}

describe('normaliseBaseUrl', () => {
  test.each([
    ['https://API.example.com:443/v1/', 'https://api.example.com/v1/'],
    ['https://api.example.com/a/./b/../c', 'https://api.example.com/a/c'],
    ['https://api.example.com', 'https://api.example.com/'],
  ])('%s → %s', (raw, expected) => {
    expect(normaliseBaseUrl(raw, false)).toBe(expected);
  });

  test.each([
    ['http://api.example.com/', 'connection_invalid'],
    ['/v1', 'connection_invalid'],
    ['https://u:p@api.example.com/', 'connection_invalid'],
    ['https://api.example.com/?a=1', 'connection_invalid'],
    ['https://api.example.com/#top', 'connection_invalid'],
    ['https://127.0.0.1/', 'forward_destination_blocked'],
    ['https://[::ffff:169.254.169.254]/', 'forward_destination_blocked'],
    ['https://0x7f.1/', 'forward_destination_blocked'],
  ])('%s is refused with %s', (raw, code) => {
    expect(codeOf(() => normaliseBaseUrl(raw, false))).toBe(code);
  });

  test('a private address is allowed with allowPrivate', () => {
    expect(normaliseBaseUrl('https://127.0.0.1:8443/api', true)).toBe('https://127.0.0.1:8443/api');
  });
});

describe('connectionTarget', () => {
  const base = compileBase('https://api.example.com/v1');
  const root = compileBase('https://api.example.com/');
  const target = (value: string | undefined, b = base) => connectionTarget(b, value, false).href;

  test.each([
    [undefined, 'https://api.example.com/v1'],
    ['', 'https://api.example.com/v1'],
    ['orders', 'https://api.example.com/v1/orders'],
    ['/orders/7?x=1', 'https://api.example.com/v1/orders/7?x=1'],
    ['//orders', 'https://api.example.com/v1/orders'],
    ['a/./b', 'https://api.example.com/v1/a/b'],
    ['a/../b', 'https://api.example.com/v1/b'],
    ['https://api.example.com/v1', 'https://api.example.com/v1'],
    ['https://api.example.com/v1/x?y=1', 'https://api.example.com/v1/x?y=1'],
    ['HTTPS://API.EXAMPLE.COM:443/v1/x', 'https://api.example.com/v1/x'],
  ])('%s → %s', (value, expected) => {
    expect(target(value)).toBe(expected);
  });

  test.each([
    '../admin',
    '..',
    'x/../../admin',
    '..%2Fadmin',
    '..%2fadmin',
    '%2e%2e/admin',
    '..;/admin',
    '..\\admin',
    '..%5Cadmin',
    'https://api.example.com/v10',
    'https://api.example.com/',
    'https://api.example.com/v1/..%2F..%2Fadmin',
    'https://api.example.com:8443/v1/x',
    'https://other.example.com/v1/x',
    'http://api.example.com/v1/x',
    'https://user@api.example.com/v1/x',
  ])('%s leaves the base URL: forward_url_invalid', (value) => {
    expect(codeOf(() => connectionTarget(base, value, false))).toBe('forward_url_invalid');
  });

  test('a base URL at the root covers every path of its origin, and nothing else', () => {
    expect(target('/anything/below', root)).toBe('https://api.example.com/anything/below');
    expect(codeOf(() => connectionTarget(root, 'https://evil.example/', false))).toBe('forward_url_invalid');
  });

  test('an absolute URL to a blocked address is forward_destination_blocked unless allowed', () => {
    const local = compileBase('https://127.0.0.1:8443/api');
    expect(codeOf(() => connectionTarget(local, 'x', false))).toBe('forward_destination_blocked');
    expect(connectionTarget(local, 'x', true).href).toBe('https://127.0.0.1:8443/api/x');
  });
});
