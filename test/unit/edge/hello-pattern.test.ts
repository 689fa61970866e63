import { describe, expect, test } from 'vitest';
import { helloPattern } from '../../../src/edge/edge-server.js';

describe('helloPattern: the configured hello path as a matcher', () => {
  test('the default path gives the tenant', () => {
    const pattern = helloPattern('/v1/tenants/{tenant}/mtls/hello');
    expect(pattern.exec('/v1/tenants/acme/mtls/hello')?.[1]).toBe('acme');
    expect(pattern.exec('/v1/tenants/acme/mtls/hello/x')).toBeNull();
    expect(pattern.exec('/v1/tenants/a/b/mtls/hello')).toBeNull();
  });

  test('a vendor path, with regular-expression characters taken literally', () => {
    const pattern = helloPattern('/v4/orgs/{tenant}/mtls.hello+(1)');
    expect(pattern.exec('/v4/orgs/org-1/mtls.hello+(1)')?.[1]).toBe('org-1');
    expect(pattern.exec('/v4/orgs/org-1/mtlsXhello+(1)')).toBeNull();
    expect(pattern.exec('/v4/orgs/org-1/mtls.hellooo(1)')).toBeNull();
  });
});
