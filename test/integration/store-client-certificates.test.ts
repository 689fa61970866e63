import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ClientCertificate, Store } from '../../src/store/index.js';
import { migrationProvider, type StoreDialect } from '../../src/store/migrations/index.js';
import { openPostgresStore } from '../../src/store/postgres.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import { dropPostgresSchemas, postgresSkipped, postgresUrl } from '../helpers/databases.js';

const skipPostgres = await postgresSkipped();
const T0 = new Date('2025-03-04T05:06:07.891Z');

function certificate(tenantId: string, fingerprintSha256: string): ClientCertificate {
  return {
    id: `ccr_${randomBytes(6).toString('hex')}`,
    tenantId,
    name: 'laptop',
    source: 'uploaded',
    summary: {
      subject: 'CN=shared',
      issuer: 'CN=shared',
      serialNumber: '01',
      fingerprintSha256,
      spkiSha256: randomBytes(32).toString('hex'),
      notBefore: T0,
      notAfter: new Date(T0.getTime() + 86_400_000),
      keyType: 'EC',
      keySize: 256,
      curve: 'P-256',
      signatureAlgorithm: 'ecdsa-with-SHA256',
      subjectAltNames: [],
    },
    certificatePem: '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n',
    createdAt: T0,
    updatedAt: T0,
  };
}

/**
 * A database at migration 0003 (one live fingerprint per deployment), then the store on it: what an
 * existing deployment upgrades from.
 */
interface OldDatabase {
  dialect: StoreDialect;
  /** Migrates a raw Kysely on the database up to 0003 and opens the store on it (not migrated). */
  openAt0003(): Promise<Store>;
  cleanup(): Promise<void>;
}

function sqliteDatabase(): OldDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'twoway-0004-'));
  const file = join(dir, 'twoway.db');
  const stores: Store[] = [];
  return {
    dialect: 'sqlite',
    async openAt0003() {
      const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new Database(file) }) });
      const { error } = await new Migrator({ db, provider: migrationProvider('sqlite') }).migrateTo(
        '0003_lifecycle',
      );
      await db.destroy();
      if (error) throw error;
      const store = await openSqliteStore(file);
      stores.push(store);
      return store;
    },
    async cleanup() {
      await Promise.all(stores.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function postgresDatabase(): OldDatabase {
  const schema = `twoway_test_${randomBytes(6).toString('hex')}`;
  const stores: Store[] = [];
  return {
    dialect: 'postgres',
    async openAt0003() {
      const pool = new pg.Pool({ connectionString: postgresUrl, options: `-c search_path=${schema}` });
      const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) });
      await db.schema.createSchema(schema).ifNotExists().execute();
      const migrator = new Migrator({
        db,
        provider: migrationProvider('postgres'),
        migrationTableSchema: schema,
      });
      const { error } = await migrator.migrateTo('0003_lifecycle');
      await db.destroy();
      if (error) throw error;
      const store = await openPostgresStore(postgresUrl, { schema });
      stores.push(store);
      return store;
    },
    async cleanup() {
      if (stores.length > 0) await dropPostgresSchemas([schema], stores);
    },
  };
}

describe.each([sqliteDatabase(), postgresDatabase()])(
  'client certificates shared by tenants on $dialect',
  (database) => {
    afterAll(() => database.cleanup());

    it.skipIf(database.dialect === 'postgres' && skipPostgres)(
      'migration 0004 lets several tenants register one certificate, once each, and the lookup returns every tenant’s',
      async () => {
        const store = await database.openAt0003();
        for (const id of ['tenant-a', 'tenant-b', 'tenant-c']) {
          await store.createTenant({ id, name: id, createdAt: T0 });
        }
        const fingerprint = randomBytes(32).toString('hex');
        const a = certificate('tenant-a', fingerprint);
        await store.createClientCertificate('tenant-a', a);
        // Before 0004 the fingerprint was unique across tenants: first come, first served.
        await expect(
          store.createClientCertificate('tenant-b', certificate('tenant-b', fingerprint)),
        ).rejects.toMatchObject({ code: 'bad_request' });

        await store.migrate();
        const b = certificate('tenant-b', fingerprint);
        await store.createClientCertificate('tenant-b', b);
        await expect(
          store.createClientCertificate('tenant-b', certificate('tenant-b', fingerprint)),
        ).rejects.toMatchObject({ code: 'client_certificate_exists' });
        await expect(
          store.createClientCertificates('tenant-a', [certificate('tenant-a', fingerprint)]),
        ).rejects.toMatchObject({ code: 'bad_request' });

        const found = await store.findClientCertificatesByFingerprint(fingerprint);
        expect(found.map((c) => [c.tenantId, c.id])).toEqual([
          ['tenant-a', a.id],
          ['tenant-b', b.id],
        ]);
        const changes = await store.listClientCertificateChanges(-1);
        expect(changes.filter((r) => r.fingerprintSha256 === fingerprint).map((r) => r.tenantId)).toEqual([
          'tenant-a',
          'tenant-b',
        ]);

        // Deleting A's leaves B's; A may register it again.
        expect(
          await store.deleteClientCertificate('tenant-a', a.id, T0, async () => {
            throw new Error('no CRL for an uploaded certificate');
          }),
        ).toBe(true);
        expect((await store.findClientCertificatesByFingerprint(fingerprint)).map((c) => c.id)).toEqual([
          b.id,
        ]);
        await store.createClientCertificate('tenant-a', certificate('tenant-a', fingerprint));
        expect(await store.findClientCertificatesByFingerprint(fingerprint)).toHaveLength(2);
        expect(await store.findClientCertificatesByFingerprint(randomBytes(32).toString('hex'))).toEqual([]);
      },
    );
  },
);
