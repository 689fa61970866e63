import { describe, expect, test } from 'vitest';
import { compileMapping, matchMapping } from '../../../src/mappings/match.js';
import { normaliseMappingUrl } from '../../../src/mappings/service.js';
import type { Mapping, MatchKind } from '../../../src/store/index.js';

let n = 0;
function mapping(match: MatchKind, url: string, service = 'api'): Mapping {
  n++;
  return {
    id: `map_${n}`,
    tenantId: 't',
    name: `m${n}`,
    service,
    url: normaliseMappingUrl(url, match),
    match,
    identityId: `idn_${n}`,
    enabled: true,
    deleted: false,
    createdAt: new Date(1_700_000_000_000 + n),
    updatedAt: new Date(1_700_000_000_000 + n),
  };
}

describe('matchMapping: the most specific mapping wins', () => {
  const any = mapping('any', '*');
  const api = mapping('prefix', 'https://api.example.com/v1');
  const apiDeep = mapping('prefix', 'https://api.example.com/v1/orders/');
  const exact = mapping('exact', 'https://api.example.com/v1/orders/42?x=1');
  const hooks = mapping('prefix', 'https://api.example.com/', 'webhooks');
  const compiled = [any, api, apiDeep, exact, hooks].map(compileMapping);
  const pick = (url: string, service = 'api') => matchMapping(compiled, service, new URL(url))?.id;

  test.each([
    ['https://api.example.com/v1/orders/42?x=1', exact.id],
    ['https://api.example.com/v1/orders/42', apiDeep.id],
    ['https://api.example.com/v1/orders', apiDeep.id],
    ['https://api.example.com/v1/ordersx', api.id],
    ['https://api.example.com/v1', api.id],
    ['https://API.example.com:443/v1/x', api.id],
    ['https://api.example.com/v1/../admin', any.id],
    // Out of /v1 for servers that decode %2F or %5C, or strip ;parameters, before routing.
    ['https://api.example.com/v1/..%2fadmin', any.id],
    ['https://api.example.com/v1/..%2Fadmin', any.id],
    ['https://api.example.com/v1/..;/admin', any.id],
    ['https://api.example.com/v1/%2e%2e%5cadmin', any.id],
    ['https://api.example.com/v1/orders/..%2f..%2fadmin', any.id],
    // …and still under it: an encoded slash inside (GitLab's `group%2Fproject`), parameters.
    ['https://api.example.com/v1/orders/a%2Fb', apiDeep.id],
    ['https://api.example.com/v1/orders/..%2Fx', api.id],
    ['https://api.example.com/v1/x;v=2', api.id],
    ['https://api.example.com/v10', any.id],
    ['https://api.example.com:8443/v1/x', any.id],
    ['https://other.example.com/v1', any.id],
  ])('%s → the right mapping', (url, id) => {
    expect(pick(url)).toBe(id);
  });

  test('services are separate', () => {
    expect(pick('https://api.example.com/v1/x', 'webhooks')).toBe(hooks.id);
    expect(pick('https://api.example.com/v1/x', 'idp')).toBeUndefined();
  });

  test('mapping URLs are checked', () => {
    expect(() => normaliseMappingUrl('http://a.example/', 'prefix')).toThrow(/https/);
    expect(() => normaliseMappingUrl('https://u:p@a.example/', 'prefix')).toThrow(/credentials/);
    expect(() => normaliseMappingUrl('nope', 'exact')).toThrow();
    expect(() => normaliseMappingUrl(undefined, 'exact')).toThrow();
    expect(normaliseMappingUrl(undefined, 'any')).toBe('*');
  });
});
