import { createHash, createPrivateKey } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { type CertificateStatus, presentationRefusal } from '../certificates/status.js';
import { AppError } from '../errors/app-error.js';
import type { IdentityService, RuntimeIdentity } from '../identities/service.js';
import { type CompiledMapping, compileMapping, matchMapping } from '../mappings/match.js';
import type { MappingService } from '../mappings/service.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import type { Mapping } from '../store/index.js';
import type { DispatcherCache, ForwardCredential } from './dispatchers.js';

/** One answer of `POST /v1/runtime/resolve`. */
export interface ResolveAnswer {
  tenant: string;
  service: string;
  url: string;
  configured: boolean;
  mappingId?: string;
  identityId?: string;
  identityStatus?: CertificateStatus;
}

/** What a forward needs once the mapping and identity are settled. */
export interface ForwardPlan {
  mappingId: string;
  identityId: string;
  version: number;
  credential: ForwardCredential;
}

interface TenantSnapshot {
  mappings: CompiledMapping[];
  identities: Map<string, Promise<RuntimeIdentity | undefined>>;
}

export interface RuntimeServiceDeps {
  mappings: Pick<MappingService, 'listForRuntime'>;
  identities: Pick<IdentityService, 'getRuntimeIdentity' | 'openPrivateKey'>;
  dispatchers: DispatcherCache;
  changes: ChangeBus;
  clock: Clock;
}

/** Most tenant snapshots kept; past it the cache starts again (each reloads on its next forward). */
const MAX_CACHED_TENANTS = 100_000;

/**
 * The runtime index: answers resolve and forward from memory. A tenant's enabled mappings and the
 * active versions of its identities are loaded on first use and kept until a change to that tenant
 * is announced (in-process writes at once; other processes through the store revision poll). Each
 * identity version gets one TLS SecureContext, built once (FIELD-NOTES: passing cert/key per
 * connection costs ~0.95 ms a handshake), and one undici Agent (see dispatchers.ts).
 */
export class RuntimeService {
  readonly #deps: RuntimeServiceDeps;
  readonly #tenants = new Map<string, Promise<TenantSnapshot>>();
  readonly #credentials = new Map<string, Promise<ForwardCredential>>();

  constructor(deps: RuntimeServiceDeps) {
    this.#deps = deps;
    // An Agent closed for idleness takes its TLS context along (about 26 KiB each).
    deps.dispatchers.onIdleClose((key) => this.#credentials.delete(key));
    deps.changes.on(
      (change) => {
        // Inbound client certificates play no part in a forward.
        if (change.kind === 'client_certificate') return;
        this.#forgetTenant(change.tenantId);
        if (change.kind === 'identity') this.#retireIdentity(change.tenantId, change.id);
      },
      () => {
        for (const tenantId of [...this.#tenants.keys()]) this.#forgetTenant(tenantId);
      },
    );
  }

  /**
   * Cached TLS client contexts (built or being built): one per identity version and trust-anchor
   * set used since its pool was last swept as idle. A retired version's context leaves this cache at
   * once, though a draining pool still holds it until its last request ends.
   */
  get credentialCount(): number {
    return this.#credentials.size;
  }

  /** Which mapping and identity would serve (tenant, service, url); never throws for bad URLs. */
  async resolve(tenantId: string, service: string, rawUrl: string): Promise<ResolveAnswer> {
    const answer: ResolveAnswer = { tenant: tenantId, service, url: rawUrl, configured: false };
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return answer;
    }
    if (url.protocol !== 'https:') return answer;
    const snapshot = await this.#snapshot(tenantId);
    const mapping = matchMapping(snapshot.mappings, service, url);
    if (!mapping) return answer;
    const runtime = await this.#identity(snapshot, tenantId, mapping.identityId);
    if (!runtime) return answer;
    return {
      ...answer,
      configured: true,
      mappingId: mapping.id,
      identityId: mapping.identityId,
      identityStatus: runtime.status,
    };
  }

  /**
   * Settles the mapping, identity and credential for a forward. `identityOverride` (the request's
   * `Twoway-Identity`) presents that identity of the tenant instead of the mapped one.
   * @throws AppError `no_mapping` (403), `identity_expired`, `identity_disabled`,
   *   `identity_not_yet_valid` (409); with an override also `not_found` (no such identity).
   */
  async plan(tenantId: string, service: string, url: URL, identityOverride?: string): Promise<ForwardPlan> {
    const snapshot = await this.#snapshot(tenantId);
    const mapping = matchMapping(snapshot.mappings, service, url);
    if (!mapping)
      throw new AppError('no_mapping', 'No enabled mapping of this tenant and service covers the URL.');
    const runtime = await this.#identity(snapshot, tenantId, identityOverride ?? mapping.identityId);
    if (!runtime) {
      throw identityOverride === undefined
        ? new AppError('no_mapping', 'The mapped identity no longer exists.')
        : new AppError('not_found', 'No such identity in this tenant (Twoway-Identity).');
    }
    this.#refuseUnusable(runtime);
    const { active, identity } = runtime;
    return {
      mappingId: mapping.id,
      identityId: identity.id,
      version: active.version,
      credential: await this.credential(tenantId, runtime, mapping.trustAnchorsPem, trustKey(mapping)),
    };
  }

  /**
   * The identity `identityId` of the tenant, if it may be presented now (connections use it).
   * @throws AppError `not_found` (no such live identity), `identity_disabled`, `identity_expired`,
   *   `identity_not_yet_valid` (409)
   */
  async presentable(tenantId: string, identityId: string): Promise<RuntimeIdentity> {
    const runtime = await this.#identity(await this.#snapshot(tenantId), tenantId, identityId);
    if (!runtime) throw new AppError('not_found', 'No such identity in this tenant.');
    this.#refuseUnusable(runtime);
    return runtime;
  }

  /**
   * The cached TLS credential that presents `runtime`'s active version (none when undefined) and
   * verifies servers with `trustAnchorsPem` (the system roots when undefined); `trust` names the
   * anchors in the key ({@link trustKeyOf}). Keys: `${tenantId}/${identityId}@${version}#${trust}`,
   * or `${tenantId}/-#${trust}` without a certificate (retired with the identity, see dispatchers.ts).
   */
  credential(
    tenantId: string,
    runtime: RuntimeIdentity | undefined,
    trustAnchorsPem: string | undefined,
    trust: string,
  ): Promise<ForwardCredential> {
    const key =
      runtime === undefined
        ? `${tenantId}/-#${trust}`
        : `${tenantId}/${runtime.identity.id}@${runtime.active.version}#${trust}`;
    let credential = this.#credentials.get(key);
    if (!credential) {
      credential = this.#buildCredential(key, runtime, trustAnchorsPem);
      this.#credentials.set(key, credential);
      credential.catch(() => this.#credentials.delete(key));
    }
    return credential;
  }

  /** @throws AppError `identity_disabled`, `identity_expired`, `identity_not_yet_valid` */
  #refuseUnusable(runtime: RuntimeIdentity): void {
    const refusal = presentationRefusal(
      runtime.identity.disabled,
      runtime.active.summary,
      this.#deps.clock.now().getTime(),
    );
    if (refusal !== undefined) throw new AppError(refusal.code, refusal.detail);
  }

  async #buildCredential(
    key: string,
    runtime: RuntimeIdentity | undefined,
    trustAnchorsPem?: string,
  ): Promise<ForwardCredential> {
    const ca = trustAnchorsPem ? { ca: trustAnchorsPem } : {};
    if (runtime === undefined) return { key, secureContext: createSecureContext(ca) };
    const der = await this.#deps.identities.openPrivateKey(runtime.active);
    let secureContext: SecureContext;
    try {
      const keyPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
        type: 'pkcs8',
        format: 'pem',
      });
      secureContext = createSecureContext({ key: keyPem, cert: runtime.active.certificatesPem, ...ca });
    } finally {
      der.fill(0);
    }
    return { key, secureContext };
  }

  #snapshot(tenantId: string): Promise<TenantSnapshot> {
    const cached = this.#tenants.get(tenantId);
    if (cached) return cached;
    const loading = this.#deps.mappings.listForRuntime(tenantId).then((mappings) => ({
      mappings: mappings.map(compileMapping),
      identities: new Map<string, Promise<RuntimeIdentity | undefined>>(),
    }));
    // A change announced while this loads deletes the entry, so a stale load is never kept.
    // Bounded: the operator token may name any tenant id, existing or not.
    if (this.#tenants.size >= MAX_CACHED_TENANTS) this.#tenants.clear();
    this.#tenants.set(tenantId, loading);
    loading.catch(() => this.#tenants.delete(tenantId));
    return loading;
  }

  #identity(
    snapshot: TenantSnapshot,
    tenantId: string,
    identityId: string,
  ): Promise<RuntimeIdentity | undefined> {
    let found = snapshot.identities.get(identityId);
    if (!found) {
      found = this.#deps.identities.getRuntimeIdentity(tenantId, identityId);
      snapshot.identities.set(identityId, found);
      found.catch(() => snapshot.identities.delete(identityId));
    }
    return found;
  }

  #forgetTenant(tenantId: string): void {
    this.#tenants.delete(tenantId);
  }

  /** Old versions' agents close once their in-flight requests finish (rotation, FIELD-NOTES). */
  #retireIdentity(tenantId: string, identityId: string): void {
    const prefix = `${tenantId}/${identityId}@`;
    for (const key of [...this.#credentials.keys()])
      if (key.startsWith(prefix)) this.#credentials.delete(key);
    this.#deps.dispatchers.retirePrefix(prefix);
  }
}

const trustKeys = new WeakMap<Mapping, string>();

/**
 * Names trust anchors in credential keys: the first 32 hex digits of the SHA-256 of the PEM, or
 * `system` for the system roots.
 */
export function trustKeyOf(trustAnchorsPem: string | undefined): string {
  return trustAnchorsPem ? createHash('sha256').update(trustAnchorsPem).digest('hex').slice(0, 32) : 'system';
}

/** A mapping's {@link trustKeyOf}, computed once per mapping. */
function trustKey(mapping: Mapping): string {
  let key = trustKeys.get(mapping);
  if (key === undefined) {
    key = trustKeyOf(mapping.trustAnchorsPem);
    trustKeys.set(mapping, key);
  }
  return key;
}
