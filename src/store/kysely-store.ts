/**
 * The composition of the store: one aggregate class per interface of types.ts, all on one
 * {@link StoreDatabase} (database.ts), merged into the single {@link Store} object callers receive.
 * sqlite.ts and postgres.ts call {@link createKyselyStore} with their {@link DialectSupport}.
 */
import type { Kysely } from 'kysely';
import { KyselyBackupStore } from './backup.js';
import { KyselyClientCertificateStore } from './client-certificates.js';
import { countConnectionsPresenting, KyselyConnectionStore } from './connections.js';
import { KyselyCsrRequestStore } from './csr-requests.js';
import { type DialectSupport, StoreDatabase } from './database.js';
import { KyselyIdentityStore } from './identities.js';
import { KyselyLifecycleStore } from './lifecycle.js';
import { countActiveMappings, KyselyMappingStore } from './mappings.js';
import { KyselyMetaStore } from './meta.js';
import { KyselyPeopleStore } from './people.js';
import { KyselyPlatformCaStore, storeCrl } from './platform-ca.js';
import { KyselySealedKeyStore } from './sealed-keys.js';
import type { Database } from './tables.js';
import { defaultIdentityLinks, KyselyTenantStore, keysHoldingRole } from './tenants.js';
import type {
  BackupStore,
  ClientCertificateStore,
  ConnectionStore,
  CsrRequestStore,
  IdentityStore,
  LifecycleStore,
  MappingStore,
  MetaStore,
  PeopleStore,
  PlatformCaStore,
  SealedKeyStore,
  Store,
  TenantStore,
} from './types.js';

/**
 * The Store over Kysely: every query written once (in the aggregate that owns its tables), run by
 * SQLite (better-sqlite3) or PostgreSQL (pg). Transactions, the revision counter and error
 * translation are StoreDatabase's. Where one aggregate's write must check another's rows in the same
 * transaction (an identity in use by mappings or connections, the tenant's default identity, the CRL
 * made from revoked client certificates), the owner's query is passed in here.
 */
export function createKyselyStore(db: Kysely<Database>, support: DialectSupport): Store {
  const database = new StoreDatabase(db, support);
  return {
    dialect: database.dialect,
    hasData: () => database.hasData(),
    migrate: () => database.migrate(),
    ping: () => database.ping(),
    close: () => database.close(),
    ...methodsOf<TenantStore>(new KyselyTenantStore(database)),
    ...methodsOf<IdentityStore>(
      new KyselyIdentityStore(
        database,
        async (db, tenantId, identityId) =>
          (await countActiveMappings(db, tenantId, identityId)) +
          (await countConnectionsPresenting(db, tenantId, identityId)),
        defaultIdentityLinks,
      ),
    ),
    ...methodsOf<MappingStore>(new KyselyMappingStore(database)),
    ...methodsOf<ConnectionStore>(new KyselyConnectionStore(database)),
    ...methodsOf<ClientCertificateStore>(new KyselyClientCertificateStore(database, storeCrl)),
    ...methodsOf<CsrRequestStore>(new KyselyCsrRequestStore(database)),
    ...methodsOf<PlatformCaStore>(new KyselyPlatformCaStore(database)),
    ...methodsOf<MetaStore>(new KyselyMetaStore(database)),
    ...methodsOf<LifecycleStore>(new KyselyLifecycleStore(database)),
    ...methodsOf<SealedKeyStore>(new KyselySealedKeyStore(database)),
    ...methodsOf<BackupStore>(new KyselyBackupStore(database)),
    ...methodsOf<PeopleStore>(new KyselyPeopleStore(database, keysHoldingRole)),
  };
}

/**
 * The methods an aggregate class declares, bound to the instance, as own properties so that they
 * spread into the Store (a class instance spreads without its prototype's methods).
 */
function methodsOf<T extends object>(part: T): T {
  const methods: Record<string, unknown> = {};
  for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(part))) {
    const value: unknown = Reflect.get(part, name);
    if (name !== 'constructor' && typeof value === 'function') methods[name] = value.bind(part);
  }
  return methods as T;
}
