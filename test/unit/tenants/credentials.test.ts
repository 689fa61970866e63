import { describe, expect, test } from 'vitest';
import { authenticateHeader, credentialOf } from '../../../src/tenants/credentials.js';
import type { Principal } from '../../../src/tenants/service.js';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

describe('credentialOf reads Bearer and Basic (RFC 6750 §2.1, RFC 7617 §2)', () => {
  test.each([
    ['Bearer tw_abc', { token: 'tw_abc' }],
    ['bearer   tw_abc  ', { token: 'tw_abc' }],
    [`Basic ${b64('key_1:tw_abc')}`, { keyId: 'key_1', token: 'tw_abc' }],
    // The secret may hold a colon: the id ends at the first one.
    [`basic ${b64('key_1:tw:abc')}`, { keyId: 'key_1', token: 'tw:abc' }],
  ])('%s', (header, expected) => {
    expect(credentialOf(header)).toEqual(expected);
  });

  test.each([
    undefined,
    '',
    'Bearer',
    'Bearer a b',
    'Token tw_abc',
    'Basic',
    'Basic !!!',
    `Basic ${b64('no-colon')}`,
    `Basic ${b64(':secret')}`,
    `Basic ${b64('key_1:')}`,
  ])('%s is no credential', (header) => {
    expect(credentialOf(header)).toBeUndefined();
  });
});

describe('authenticateHeader', () => {
  const tenant: Principal = { kind: 'tenant', tenantId: 't', actor: 'api-key:key_1', permissions: new Set() };
  const tenants = {
    authenticate: async (token: string | undefined): Promise<Principal> => {
      if (token === 'tw_abc') return tenant;
      if (token === 'operator-secret') return { kind: 'operator', actor: 'operator' };
      throw new Error('unauthorized');
    },
  };

  test('Basic admits only the id of the key whose secret it carries', async () => {
    await expect(authenticateHeader(tenants, `Basic ${b64('key_1:tw_abc')}`)).resolves.toBe(tenant);
    await expect(authenticateHeader(tenants, `Basic ${b64('key_2:tw_abc')}`)).rejects.toMatchObject({
      code: 'unauthorized',
    });
    await expect(
      authenticateHeader(tenants, `Basic ${b64('operator:operator-secret')}`),
    ).rejects.toMatchObject({
      code: 'unauthorized',
    });
  });

  test('a member session has no key id: Basic never names it', async () => {
    const member = { authenticate: async () => ({ ...tenant, actor: 'member:m1' }) as Principal };
    await expect(authenticateHeader(member, `Basic ${b64('m1:x')}`)).rejects.toMatchObject({
      code: 'unauthorized',
    });
  });
});
