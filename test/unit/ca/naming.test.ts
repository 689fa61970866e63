import { describe, expect, test } from 'vitest';
import { tenantOfSubjectAltNames, tenantUri } from '../../../src/ca/naming.js';

describe('tenant naming in issued certificates', () => {
  test('one urn:twoway:tenant URI names the tenant; none or two name nobody', () => {
    expect(tenantUri('acme')).toBe('urn:twoway:tenant:acme');
    expect(tenantOfSubjectAltNames(['DNS:x', 'URI:urn:twoway:tenant:acme'])).toBe('acme');
    expect(tenantOfSubjectAltNames(['URI:https://acme.example/'])).toBeUndefined();
    expect(tenantOfSubjectAltNames(['URI:urn:twoway:tenant:a', 'URI:urn:twoway:tenant:b'])).toBeUndefined();
  });
});
