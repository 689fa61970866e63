import { describe, expect, test } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import { uniqueAddresses } from '../../../src/lifecycle/recipients.js';
import { BUILT_IN_ROLES, PERMISSIONS, permissionsOf } from '../../../src/people/permissions.js';
import { requireGrantable, rolePermissions } from '../../../src/people/service.js';
import { csrfMatches, csrfTokenOf, portalUrl, safeReturnPath } from '../../../src/people/sessions.js';
import type { Role } from '../../../src/store/index.js';

const codeOf = (work: () => unknown): string | undefined => {
  try {
    work();
    return undefined;
  } catch (err) {
    return err instanceof AppError ? err.code : 'not an AppError';
  }
};

describe('permissions', () => {
  test('admin holds every permission, viewer every :read one and nothing else', () => {
    expect([...permissionsOf(['admin'], new Map())]).toEqual([...PERMISSIONS]);
    expect([...permissionsOf(['viewer'], new Map())].every((p) => p.endsWith(':read'))).toBe(true);
    expect(permissionsOf(['viewer'], new Map()).size).toBe(
      PERMISSIONS.filter((p) => p.endsWith(':read')).length,
    );
    expect(BUILT_IN_ROLES.viewer.permissions).not.toContain('runtime:forward');
  });

  test('roles add up; a name that is no role grants nothing; a custom role cannot shadow a built-in one', () => {
    const custom = new Map([
      ['forwarder', { permissions: ['runtime:forward' as const] }],
      ['admin', { permissions: [] }],
    ]);
    expect([...permissionsOf(['forwarder', 'ghost'], custom)]).toEqual(['runtime:forward']);
    expect(permissionsOf(['admin'], custom).size).toBe(PERMISSIONS.length);
    expect(permissionsOf([], custom).size).toBe(0);
  });

  test('rolePermissions reads the custom roles only when a custom name is asked for, and ignores unknown permission names', async () => {
    let reads = 0;
    const resolve = rolePermissions({
      async listRoles(): Promise<Role[]> {
        reads += 1;
        return [
          {
            tenantId: 't',
            name: 'ops',
            description: '',
            permissions: ['alerts:read', 'everything:delete'],
            createdAt: new Date(0),
            updatedAt: new Date(0),
          },
        ];
      },
    });
    expect([...(await resolve('t', ['viewer']))]).toContain('audit:read');
    expect(reads).toBe(0);
    expect([...(await resolve('t', ['ops']))]).toEqual(['alerts:read']);
    expect(reads).toBe(1);
  });

  test('nobody grants what it does not hold', () => {
    const grantor = new Set(['members:write' as const, 'alerts:read' as const]);
    expect(codeOf(() => requireGrantable(grantor, ['alerts:read'], 'x'))).toBeUndefined();
    expect(codeOf(() => requireGrantable(grantor, [], 'x'))).toBeUndefined();
    expect(codeOf(() => requireGrantable(grantor, ['alerts:read', 'identities:write'], 'x'))).toBe(
      'forbidden',
    );
  });
});

describe('portal links and sessions', () => {
  test('return URLs: only paths under /ui/ on this origin, normalised', () => {
    expect(safeReturnPath('/ui/')).toBe('/ui/');
    expect(safeReturnPath('/ui')).toBe('/ui');
    expect(safeReturnPath('/ui/a/./b?q=1#h')).toBe('/ui/a/b?q=1#h');
    expect(safeReturnPath('/ui/%E2%9C%93')).toBe('/ui/%E2%9C%93');
    for (const bad of [
      '',
      'ui/',
      '/uix',
      '/UI/',
      '/ui/..',
      '/ui/%2E%2E/admin',
      '//evil.example/ui/',
      '///evil.example/ui/',
      '/\\evil.example/ui/',
      '/ui\\..\\v1',
      'https://twoway.invalid/ui/',
      'http:/ui/',
      '/ui/\u0000',
      '/ui/\u0085',
      '/ui/ x',
    ]) {
      expect(
        codeOf(() => safeReturnPath(bad)),
        JSON.stringify(bad),
      ).toBe('return_url_invalid');
    }
  });

  test('the CSRF token is derived from the session id, reveals nothing of it, and is compared exactly', () => {
    const session = `tws_${'a'.repeat(43)}`;
    const token = csrfTokenOf(session);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(token).not.toContain(session.slice(4, 20));
    expect(csrfTokenOf(session)).toBe(token);
    expect(csrfTokenOf(`tws_${'b'.repeat(43)}`)).not.toBe(token);
    expect(csrfMatches(session, token)).toBe(true);
    for (const wrong of [undefined, '', token.slice(1), `${token}x`, token.toUpperCase(), session]) {
      expect(csrfMatches(session, wrong), String(wrong)).toBe(false);
    }
  });

  test('link URLs join the base URL and the path once', () => {
    expect(portalUrl('https://twoway.example/', 'twl_x')).toBe('https://twoway.example/v1/portal/twl_x');
    expect(portalUrl('http://127.0.0.1:8080', 'twl_x')).toBe('http://127.0.0.1:8080/v1/portal/twl_x');
  });
});

describe('expiry e-mail recipients', () => {
  test('each address once, compared without case, the first spelling kept', () => {
    expect(uniqueAddresses(['Ops@A.example', 'ops@a.example', ' b@a.example ', '', 'B@A.EXAMPLE'])).toEqual([
      'Ops@A.example',
      'b@a.example',
    ]);
  });
});
