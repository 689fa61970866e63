import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors/app-error.js';
import type { ApiKey, Member, Role, SessionRecord, Store } from '../../src/store/index.js';
import { migrationProvider } from '../../src/store/migrations/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { postgresSkipped, postgresUrl, storeBackends } from '../helpers/databases.js';

const skipPostgres = await postgresSkipped();
const T0 = new Date('2025-05-06T07:08:09.010Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
let counter = 0;
const uid = (prefix: string) => `${prefix}-${++counter}-${randomBytes(3).toString('hex')}`;
const hash = () => randomBytes(32).toString('hex');

function role(tenantId: string, name: string, permissions: string[]): Role {
  return { tenantId, name, description: '', permissions, createdAt: T0, updatedAt: T0 };
}

function member(tenantId: string, id: string, roles: string[]): Member {
  return { tenantId, id, email: `${id}@example.com`, roles, createdAt: T0, updatedAt: T0 };
}

function key(tenantId: string, roles: string[]): ApiKey {
  return { id: uid('key'), tenantId, name: 'k', roles, tokenSha256: hash(), createdAt: T0 };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error('expected an AppError');
}

describe.each(storeBackends())('people store on $name', (backend) => {
  describe.skipIf(backend.name === 'postgres' && skipPostgres)('', () => {
    let store: Store;
    let tenant: string;
    let other: string;

    beforeAll(async () => {
      store = await backend.open();
      tenant = uid('t');
      other = uid('t');
      await store.createTenant({ id: tenant, name: 'T', createdAt: T0 });
      await store.createTenant({ id: other, name: 'O', createdAt: T0 });
    });
    afterAll(() => backend.cleanup());

    it('roles are upserted, checked where they are given, and cannot be deleted while held', async () => {
      const revision = await store.getRevision();
      expect(await store.putRole(tenant, role(tenant, 'ops', ['alerts:read']))).toBe(true);
      expect(await store.putRole(tenant, { ...role(tenant, 'ops', ['audit:read']), createdAt: at(5) })).toBe(
        false,
      );
      expect(await store.getRole(tenant, 'ops')).toMatchObject({
        permissions: ['audit:read'],
        createdAt: T0,
      });
      expect(await store.getRevision()).toBe(revision + 2);
      expect(await store.getRole(other, 'ops')).toBeUndefined();

      expect(await codeOf(store.putMember(tenant, member(tenant, 'm1', ['ops', 'nope'])))).toBe(
        'unknown_role',
      );
      expect(await codeOf(store.createApiKey(tenant, key(tenant, ['nope'])))).toBe('unknown_role');
      // Another tenant's role is no role here.
      expect(await codeOf(store.putMember(other, member(other, 'm1', ['ops'])))).toBe('unknown_role');

      expect((await store.putMember(tenant, member(tenant, 'm1', ['ops', 'viewer']))).created).toBe(true);
      expect(await store.deleteRole(tenant, 'ops')).toBe('in_use');
      await store.putMember(tenant, member(tenant, 'm1', ['viewer']));
      const held = key(tenant, ['ops']);
      await store.createApiKey(tenant, held);
      expect(await store.deleteRole(tenant, 'ops')).toBe('in_use');
      await store.revokeApiKey(tenant, held.id, at(1));
      expect(await store.deleteRole(other, 'ops')).toBe('not_found');
      expect(await store.deleteRole(tenant, 'ops')).toBe('deleted');
      expect(await store.deleteRole(tenant, 'ops')).toBe('not_found');
    });

    it('members are upserted under their own ids per tenant, listed in pages, and deleted with their sessions and links', async () => {
      const put = await store.putMember(tenant, { ...member(tenant, 'page-b', []), name: 'B' });
      expect(put).toMatchObject({ created: true, member: { id: 'page-b', name: 'B', roles: [] } });
      const again = await store.putMember(tenant, {
        ...member(tenant, 'page-b', ['admin']),
        createdAt: at(9),
        updatedAt: at(9),
      });
      expect(again).toMatchObject({
        created: false,
        member: { createdAt: T0, updatedAt: at(9), roles: ['admin'] },
      });
      expect((await store.getMember(tenant, 'page-b'))?.name).toBeUndefined();
      await store.putMember(tenant, member(tenant, 'page-a', []));
      await store.putMember(tenant, member(tenant, 'page-c', []));
      // The same id in another tenant is another member.
      await store.putMember(other, member(other, 'page-a', ['admin']));
      const first = await store.listMembers(tenant, { limit: 2 });
      const rest = await store.listMembers(tenant, { limit: 10, afterId: first.at(-1)?.id ?? '' });
      expect([...first, ...rest].map((m) => m.id).filter((id) => id.startsWith('page-'))).toEqual([
        'page-a',
        'page-b',
        'page-c',
      ]);
      expect((await store.getMember(other, 'page-a'))?.roles).toEqual(['admin']);

      const session: SessionRecord = {
        idSha256: hash(),
        subject: { kind: 'member', tenantId: tenant, memberId: 'page-a' },
        createdAt: T0,
        lastSeenAt: T0,
        expiresAt: at(3_600_000),
      };
      await store.createSession(session, T0);
      const link = { tokenSha256: hash(), subject: session.subject, createdAt: T0, expiresAt: at(300_000) };
      await store.createPortalLink(link, T0);
      expect(await store.deleteMember(other, 'page-c')).toBe(false);
      expect(await store.deleteMember(tenant, 'page-a')).toBe(true);
      expect(await store.getSession(session.idSha256)).toBeUndefined();
      const fresh = { idSha256: hash(), createdAt: at(1), lastSeenAt: at(1), expiresAt: at(10) };
      expect(await store.openPortalLink(link.tokenSha256, at(1), fresh)).toBeUndefined();
      expect(await store.getMember(other, 'page-a')).toBeDefined();
      expect(await store.deleteMember(tenant, 'page-a')).toBe(false);
    });

    it('a portal link opens once, even when asked at the same moment, and not after it expired', async () => {
      await store.putMember(tenant, member(tenant, 'linked', ['viewer']));
      const subject = { kind: 'member' as const, tenantId: tenant, memberId: 'linked' };
      const link = {
        tokenSha256: hash(),
        subject,
        returnUrl: '/ui/x',
        createdAt: T0,
        expiresAt: at(300_000),
      };
      await store.createPortalLink(link, T0);
      const sessions = Array.from({ length: 6 }, () => ({
        idSha256: hash(),
        createdAt: at(1),
        lastSeenAt: at(1),
        expiresAt: at(3_600_000),
      }));
      const opened = await Promise.all(sessions.map((s) => store.openPortalLink(link.tokenSha256, at(1), s)));
      const winners = opened.filter((o) => o !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]).toMatchObject({ subject, returnUrl: '/ui/x', usedAt: at(1) });
      const made = await Promise.all(sessions.map((s) => store.getSession(s.idSha256)));
      expect(made.filter((s) => s !== undefined)).toHaveLength(1);

      const late = { tokenSha256: hash(), subject, createdAt: T0, expiresAt: at(300_000) };
      await store.createPortalLink(late, T0);
      const session = { idSha256: hash(), createdAt: at(1), lastSeenAt: at(1), expiresAt: at(2) };
      expect(await store.openPortalLink(late.tokenSha256, at(300_000), session)).toBeUndefined();
      expect(await store.getSession(session.idSha256)).toBeUndefined();

      const console = {
        tokenSha256: hash(),
        subject: { kind: 'operator' as const },
        createdAt: T0,
        expiresAt: at(9),
      };
      await store.createPortalLink(console, T0);
      expect(await store.openPortalLink(console.tokenSha256, at(1), session)).toMatchObject({
        subject: { kind: 'operator' },
      });
      expect((await store.getSession(session.idSha256))?.subject).toEqual({ kind: 'operator' });
    });

    it('sessions and key use are bookkeeping: touching them does not bump the revision', async () => {
      const k = key(tenant, ['viewer']);
      await store.createApiKey(tenant, k);
      const session: SessionRecord = {
        idSha256: hash(),
        subject: { kind: 'operator' },
        createdAt: T0,
        lastSeenAt: T0,
        expiresAt: at(100),
      };
      const revision = await store.getRevision();
      await store.createSession(session, T0);
      await store.touchSession(session.idSha256, at(50));
      await store.touchApiKey(tenant, k.id, at(60_000));
      expect(await store.getRevision()).toBe(revision);
      expect(await store.getSession(session.idSha256)).toMatchObject({ lastSeenAt: at(50) });
      expect(await store.getApiKey(tenant, k.id)).toMatchObject({
        roles: ['viewer'],
        lastUsedAt: at(60_000),
      });
      expect(await store.getApiKey(other, k.id)).toBeUndefined();
      expect((await store.listApiKeys(tenant, { limit: 100 })).map((x) => x.id)).toContain(k.id);
      // A later sign-in purges sessions past their end.
      await store.createSession({ ...session, idSha256: hash() }, at(101));
      expect(await store.getSession(session.idSha256)).toBeUndefined();
      expect(await store.deleteSession(session.idSha256)).toBe(false);
    });
  });
});

describe.each(['sqlite', 'postgres'] as const)('migration 0006_people on %s', (dialect) => {
  describe.skipIf(dialect === 'postgres' && skipPostgres)('', () => {
    const folder = mkdtempSync(join(tmpdir(), 'twoway-people-migration-'));
    const schema = `tw_people_${randomBytes(5).toString('hex')}`;
    let store: Store | undefined;

    afterAll(async () => {
      await store?.close();
      rmSync(folder, { recursive: true, force: true });
      if (dialect === 'postgres') {
        const client = new pg.Client(postgresUrl);
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
    });

    it('keeps what existing keys could do (admin), renames old audit actors, and turns notifyMembers on', async () => {
      const file = join(folder, 'twoway.db');
      let db: Kysely<unknown>;
      if (dialect === 'sqlite') {
        db = new Kysely({ dialect: new SqliteDialect({ database: new Database(file) }) });
      } else {
        const setup = new pg.Client(postgresUrl);
        await setup.connect();
        await setup.query(`create schema ${schema}`);
        await setup.end();
        const pool = new pg.Pool({ connectionString: postgresUrl, options: `-c search_path=${schema}` });
        db = new Kysely({ dialect: new PostgresDialect({ pool }) });
      }
      const migrator = new Migrator({
        db,
        provider: migrationProvider(dialect),
        ...(dialect === 'postgres' ? { migrationTableSchema: schema } : {}),
      });
      expect((await migrator.migrateTo('0003_lifecycle')).error).toBeUndefined();
      await sql`insert into tenants (id, name, created_at) values ('old', 'Old', 1)`.execute(db);
      await sql`insert into api_keys (id, tenant_id, token_sha256, created_at) values ('key_old', 'old', ${'a'.repeat(64)}, 1)`.execute(
        db,
      );
      await sql`insert into notification_settings (tenant_id, emails_json, webhook_urls_json, thresholds_json, updated_at)
        values ('old', '["a@old.example"]', '[]', '[7]', 1)`.execute(db);
      for (const [id, actor] of [
        ['aud_1', 'key_old'],
        ['aud_2', 'operator'],
        ['aud_3', 'scheduler'],
      ]) {
        await sql`insert into audit_events (id, tenant_id, at, actor, action, object_type, object_id, detail_json)
          values (${id}, 'old', 1, ${actor}, 'x.y', 'x', 'x', '{}')`.execute(db);
      }
      await db.destroy();

      store =
        dialect === 'sqlite' ? await openSqliteStore(file) : await openPostgresStore(postgresUrl, { schema });
      await store.migrate();
      expect(await store.findApiKeyByHash('a'.repeat(64))).toMatchObject({
        id: 'key_old',
        name: 'API key',
        roles: ['admin'],
      });
      expect((await store.getNotificationSettings('old'))?.notifyMembers).toBe(true);
      const actors = (await store.listAuditEvents('old', {}, { limit: 10 })).items.map((e) => e.actor).sort();
      expect(actors).toEqual(['api-key:key_old', 'operator', 'scheduler']);
      // Running it again (a start after a cut-short one) changes nothing.
      await store.migrate();
      expect(
        (await store.listAuditEvents('old', {}, { limit: 10 })).items.map((e) => e.actor).sort(),
      ).toEqual(actors);
    });
  });
});
