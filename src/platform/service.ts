/**
 * The platform's own client identities (issue 16, items 1 and 2): the certificate Twoway presents
 * when the platform itself calls its customers (webhooks, callbacks), issued by the **platform
 * outbound CA**, a root and issuing CA of their own, never the CA that signs tenants' CSRs, so a
 * customer who trusts it admits the platform and nothing a tenant obtained.
 *
 * The identities live as ordinary identities of the reserved tenant `_platform` (no tenant id can
 * take it: ids start with a letter or digit), so versions, rotation, `activateAt`, sealing and the
 * expiry alerts are the identities' own; the alerts go to `_platform`'s notification settings, which
 * only the operator can set.
 */
import { webcrypto, X509Certificate } from 'node:crypto';
import type { PlatformCa } from '../ca/platform-ca.js';
import type { IdentityUpload } from '../certificates/identity.js';
import { fingerprintSha256, toPem } from '../certificates/index.js';
import { AppError } from '../errors/app-error.js';
import type { IdentityService, IdentityView } from '../identities/service.js';
import type { Clock } from '../shared/clock.js';
import type { IdentityStore, TenantStore } from '../store/index.js';

/** The reserved tenant that holds the platform's identities. */
export const PLATFORM_TENANT = '_platform';

/** Days a certificate of the platform outbound CA is valid. */
const PLATFORM_CERT_DAYS = 365;

/** Key types Twoway generates for a platform identity. */
export type PlatformKeyType = 'EC' | 'RSA' | 'Ed25519';

/** What `issue` asks for: the certificate's common name (a host name also becomes a DNS SAN). */
export interface PlatformIssueRequest {
  commonName: string;
  keyType?: PlatformKeyType;
}

/** One published certificate (API.md "Platform identity"). */
export interface PublishedCertificate {
  identityId: string;
  name: string;
  version: number;
  /** True for the version presented now; false for a next one (scheduled or not yet activated). */
  active: boolean;
  fingerprintSha256: string;
  notAfter: string;
  certificatePem: string;
}

export interface PlatformIdentityDeps {
  identities: Pick<IdentityService, 'importIdentity' | 'addVersion' | 'activateVersion' | 'get' | 'list'>;
  store: Pick<TenantStore, 'getTenant' | 'createTenant'> &
    Pick<IdentityStore, 'listIdentities' | 'listVersions'>;
  /** The platform outbound CA. */
  outboundCa: Pick<PlatformCa, 'issuePlatformClientCertificate' | 'chainPem'>;
  clock: Clock;
}

const KEY_PARAMS: Record<PlatformKeyType, EcKeyGenParams | RsaHashedKeyGenParams | { name: 'Ed25519' }> = {
  EC: { name: 'ECDSA', namedCurve: 'P-256' },
  RSA: {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: 3072,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  },
  Ed25519: { name: 'Ed25519' },
};

export class PlatformIdentityService {
  readonly #deps: PlatformIdentityDeps;
  #ensured: Promise<void> | undefined;

  constructor(deps: PlatformIdentityDeps) {
    this.#deps = deps;
  }

  /** Creates the reserved tenant once (idempotent across processes). */
  ensure(): Promise<void> {
    this.#ensured ??= (async () => {
      const { store, clock } = this.#deps;
      if (await store.getTenant(PLATFORM_TENANT)) return;
      try {
        await store.createTenant({ id: PLATFORM_TENANT, name: 'Twoway platform', createdAt: clock.now() });
      } catch (err) {
        if (!(err instanceof AppError && err.code === 'tenant_exists')) throw err;
      }
    })().catch((err: unknown) => {
      this.#ensured = undefined;
      throw err;
    });
    return this.#ensured;
  }

  /**
   * A new platform identity from an upload (as a tenant identity) or issued by the platform outbound
   * CA for a key made here (sealed like every key; it never leaves Twoway).
   * @throws AppError the upload codes of identities, `bad_request`
   */
  async create(
    name: string,
    source: { upload: IdentityUpload } | { issue: PlatformIssueRequest },
  ): Promise<IdentityView> {
    await this.ensure();
    if ('upload' in source) return this.#deps.identities.importIdentity(PLATFORM_TENANT, name, source.upload);
    const issued = await this.#issue(source.issue);
    try {
      return await this.#deps.identities.importIdentity(PLATFORM_TENANT, name, issued);
    } finally {
      issued.privateKey?.fill(0);
    }
  }

  /**
   * A new version (rotation), uploaded or issued; `activateAt` schedules it, so it is published as
   * the next certificate before it is presented.
   * @throws AppError `not_found`, the upload codes, `version_not_usable`
   */
  async addVersion(
    identityId: string,
    source: { upload: IdentityUpload } | { issue: PlatformIssueRequest },
    activate: boolean,
    options: { activateAt?: Date } = {},
  ): Promise<IdentityView> {
    await this.ensure();
    const upload = 'upload' in source ? source.upload : await this.#issue(source.issue);
    try {
      return await this.#deps.identities.addVersion(PLATFORM_TENANT, identityId, upload, activate, options);
    } finally {
      if ('issue' in source) upload.privateKey?.fill(0);
    }
  }

  /** @throws AppError `not_found`, `version_not_usable` */
  async activateVersion(identityId: string, version: number): Promise<IdentityView> {
    return this.#deps.identities.activateVersion(PLATFORM_TENANT, identityId, version);
  }

  /** @throws AppError `not_found` */
  async get(identityId: string): Promise<IdentityView> {
    return this.#deps.identities.get(PLATFORM_TENANT, identityId);
  }

  async list(): Promise<IdentityView[]> {
    await this.ensure();
    return (await this.#deps.identities.list(PLATFORM_TENANT, { limit: 1000 })).items;
  }

  /**
   * What customers pin or trust: the active version and every next one (newer than the active,
   * not yet presented) of each platform identity, and the outbound CA chain (issuing CA, root).
   */
  async publish(): Promise<{ items: PublishedCertificate[]; caPem: string }> {
    await this.ensure();
    const { store, outboundCa } = this.#deps;
    const items: PublishedCertificate[] = [];
    const page = await store.listIdentities(PLATFORM_TENANT, { limit: 1000 });
    for (const identity of page.items) {
      if (identity.disabled) continue;
      for (const version of await store.listVersions(PLATFORM_TENANT, identity.id)) {
        if (version.version < identity.activeVersion) continue;
        const leafPem = leafOf(version.certificatesPem);
        items.push({
          identityId: identity.id,
          name: identity.name,
          version: version.version,
          active: version.version === identity.activeVersion,
          fingerprintSha256: fingerprintSha256(new X509Certificate(leafPem)),
          notAfter: version.summary.notAfter.toISOString(),
          certificatePem: leafPem,
        });
      }
    }
    return { items, caPem: await outboundCa.chainPem() };
  }

  /** A fresh key pair and its certificate from the platform outbound CA, as an upload. */
  async #issue(request: PlatformIssueRequest): Promise<IdentityUpload> {
    const keyType = request.keyType ?? 'EC';
    const keys = (await webcrypto.subtle.generateKey(KEY_PARAMS[keyType], true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const issued = await this.#deps.outboundCa.issuePlatformClientCertificate({
      commonName: request.commonName,
      publicKey: keys.publicKey,
      days: PLATFORM_CERT_DAYS,
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    try {
      return {
        certificate: Buffer.from(issued.certificatePem, 'utf8'),
        privateKey: Buffer.from(toPem('PRIVATE KEY', pkcs8), 'utf8'),
        chain: Buffer.from(issued.chainPem, 'utf8'),
      };
    } finally {
      pkcs8.fill(0);
    }
  }
}

/** The first certificate of a PEM bundle (leaf first). */
function leafOf(bundlePem: string): string {
  const end = bundlePem.indexOf('-----END CERTIFICATE-----');
  return end < 0 ? bundlePem : `${bundlePem.slice(0, end + '-----END CERTIFICATE-----'.length)}\n`;
}
