import type { Migration, MigrationProvider } from 'kysely';
import { initial } from './0001-initial.js';
import { inbound } from './0002-inbound.js';
import { lifecycle } from './0003-lifecycle.js';
import { sharedClientCertificates } from './0004-shared-client-certificates.js';
import { people } from './0006-people.js';
import { listOrder } from './0010-list-order.js';

/** The two SQL engines Twoway stores data in. */
export type StoreDialect = 'sqlite' | 'postgres';

/**
 * Every migration, in order, for one dialect: a static list compiled into the program, so nothing
 * is read from disk at run time (the bundle and the schema always agree). Names sort in order of
 * application; never rename or edit a released one, add a new one instead.
 */
export function migrationsFor(dialect: StoreDialect): Record<string, Migration> {
  return {
    '0001_initial': initial(dialect),
    '0002_inbound': inbound(dialect),
    '0003_lifecycle': lifecycle(dialect),
    '0004_shared_client_certificates': sharedClientCertificates(),
    '0010_list_order': listOrder(),
    '0006_people': people(dialect),
  };
}

/** A Kysely `MigrationProvider` over {@link migrationsFor}. */
export function migrationProvider(dialect: StoreDialect): MigrationProvider {
  return { getMigrations: async () => migrationsFor(dialect) };
}
