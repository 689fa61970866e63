import type { KeyObject } from 'node:crypto';
import type { Static } from '@sinclair/typebox';
import type { IdentityParser, IdentityUpload, ParsedIdentity } from '../certificates/index.js';
import { type CertificateStatus, certificateStatus } from '../certificates/status.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { certificateFacts } from '../http/certificate-facts.js';
import { identityKeyAad, open, seal } from '../kms/envelope.js';
import type { Kms } from '../kms/types.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { newId } from '../shared/ids.js';
import { type Collection, everyItem, viewPage } from '../shared/paging.js';
import { type Quotas, quotaLimit } from '../shared/quotas.js';
import type { Identity, IdentityStore, IdentityVersion, PageRequest } from '../store/index.js';
import type { IdentitySchema, VersionSchema } from './schemas.js';

/** An identity as the API shows it (API.md "Identity"); never any key material. */
export type IdentityView = Static<typeof IdentitySchema>;

/** One version as the API shows it (API.md "Version"). */
export type VersionView = Static<typeof VersionSchema>;

/** What the runtime needs to present an identity: the active version, decrypted on demand. */
export interface RuntimeIdentity {
  identity: Identity;
  active: IdentityVersion;
  status: CertificateStatus;
}

export interface IdentityServiceDeps {
  store: IdentityStore;
  kms: Kms;
  clock: Clock;
  /** Reads and validates uploads in worker threads (key derivation off the event loop). */
  parser: IdentityParser;
  changes: ChangeBus;
  /**
   * The tenant's first (largest) expiry threshold in days, which makes a status `expiring`
   * (lifecycle notification settings); 7 when not given.
   */
  expiringWithinDays?: (tenantId: string) => Promise<number>;
  /**
   * Per-tenant quotas (TWOWAY_QUOTA_IDENTITIES, TWOWAY_QUOTA_VERSIONS_PER_IDENTITY): live identities
   * of a tenant, versions of one identity. No quota when absent.
   */
  quotas?: Pick<Quotas, 'identities' | 'versionsPerIdentity'>;
}

/**
 * Outbound client identities: import (PKCS#12 or PEM, validated by certificates/readIdentity),
 * versions and activation (rotation), soft delete. The private key is sealed with envelope
 * encryption (AES-256-GCM, AAD = tenant/identity/version) before it reaches the store, and the
 * plaintext PKCS#8 buffer is zeroed right after.
 */
export class IdentityService {
  readonly #deps: IdentityServiceDeps;

  constructor(deps: IdentityServiceDeps) {
    this.#deps = deps;
  }

  /**
   * Validates and stores a new identity with version 1 active.
   * @throws AppError with an upload code (API.md: `unsupported_format`, `bad_password`, `key_mismatch`,
   *   ...); `quota_exceeded` when the tenant has its quota of live identities (counted in the write
   *   transaction; nothing is stored)
   */
  async importIdentity(tenantId: string, name: string, upload: IdentityUpload): Promise<IdentityView> {
    const validated = await this.#validate(tenantId, upload);
    const now = this.#deps.clock.now();
    const identity: Identity = {
      id: newId('idn'),
      tenantId,
      name,
      activeVersion: 1,
      disabled: false,
      createdAt: now,
      updatedAt: now,
    };
    const first = await this.#version(tenantId, identity.id, 1, validated, now, true);
    await this.#deps.store.createIdentity(
      tenantId,
      identity,
      first,
      quotaLimit(
        this.#deps.quotas?.identities,
        'identities in this tenant',
        'TWOWAY_QUOTA_IDENTITIES',
        'delete one first.',
      ),
    );
    await this.#announce(tenantId, identity.id);
    return this.get(tenantId, identity.id);
  }

  /**
   * Adds a version (rotation); activates it at once unless `activate` is false or `activateAt` (a
   * future instant) is given, in which case the lifecycle scheduler activates it then, through
   * {@link activateVersion}. An `activateAt` that is not in the future activates at once.
   * @throws AppError `not_found`, an upload code, `version_not_usable` (the certificate is not
   *   valid at `activateAt`), or `quota_exceeded` when the identity has its quota of versions
   *   (versions are kept for the record; upload a new identity instead)
   */
  async addVersion(
    tenantId: string,
    identityId: string,
    upload: IdentityUpload,
    activate: boolean,
    options: { activateAt?: Date } = {},
  ): Promise<IdentityView> {
    await this.#require(tenantId, identityId);
    const validated = await this.#validate(tenantId, upload);
    const now = this.#deps.clock.now();
    let activateAt: Date | undefined;
    if (options.activateAt !== undefined) {
      if (options.activateAt.getTime() <= now.getTime()) activate = true;
      else {
        activate = false;
        activateAt = options.activateAt;
        const { notBefore, notAfter } = validated.summary;
        if (notAfter.getTime() < activateAt.getTime() || notBefore.getTime() > activateAt.getTime()) {
          throw new AppError(
            'version_not_usable',
            'This certificate is not valid at activateAt; it cannot be scheduled for then.',
          );
        }
      }
    }
    // The version number is decided inside the store's transaction and is part of the AAD, so
    // the key is sealed there, for exactly that number.
    await this.#deps.store.addVersion(
      tenantId,
      identityId,
      async (version) => ({
        ...(await this.#version(tenantId, identityId, version, validated, now, activate)),
        ...(activateAt ? { activateAt } : {}),
      }),
      activate,
      now,
      quotaLimit(
        this.#deps.quotas?.versionsPerIdentity,
        'versions of this identity',
        'TWOWAY_QUOTA_VERSIONS_PER_IDENTITY',
        'upload the certificate as a new identity.',
      ),
    );
    await this.#announce(tenantId, identityId);
    return this.get(tenantId, identityId);
  }

  /**
   * Makes `version` the active one (roll forward or back), atomically.
   * @throws AppError `not_found`, `version_not_usable`
   */
  async activateVersion(tenantId: string, identityId: string, version: number): Promise<IdentityView> {
    await this.#require(tenantId, identityId);
    const target = await this.#deps.store.getVersion(tenantId, identityId, version);
    if (!target) throw new AppError('not_found', 'No such version.');
    const now = this.#deps.clock.now();
    if (target.summary.notAfter < now) {
      throw new AppError('version_not_usable', 'This version has expired; it cannot be activated.');
    }
    if (target.summary.notBefore > now) {
      throw new AppError('version_not_usable', 'This version is not yet valid; it cannot be activated.');
    }
    await this.#deps.store.activateVersion(tenantId, identityId, version, now);
    await this.#announce(tenantId, identityId);
    return this.get(tenantId, identityId);
  }

  /**
   * Cancels a version's scheduled activation.
   * @throws AppError `not_found` (no such identity, or no activation is scheduled for the version)
   */
  async cancelScheduledActivation(
    tenantId: string,
    identityId: string,
    version: number,
  ): Promise<IdentityView> {
    await this.#require(tenantId, identityId);
    const cleared = await this.#deps.store.clearScheduledActivation(tenantId, identityId, version);
    if (!cleared) throw new AppError('not_found', 'No activation is scheduled for this version.');
    return this.get(tenantId, identityId);
  }

  /**
   * Renames, disables or re-enables an identity. A disabled identity is never presented: forwards
   * that map to it get `identity_disabled`.
   * @throws AppError `not_found`
   */
  async updateIdentity(
    tenantId: string,
    identityId: string,
    changes: { name?: string; disabled?: boolean },
  ): Promise<IdentityView> {
    await this.#require(tenantId, identityId);
    await this.#deps.store.updateIdentity(tenantId, identityId, changes, this.#deps.clock.now());
    await this.#announce(tenantId, identityId);
    return this.get(tenantId, identityId);
  }

  /** @throws AppError `not_found`, `identity_in_use` */
  async deleteIdentity(tenantId: string, identityId: string): Promise<void> {
    await this.#require(tenantId, identityId);
    // One write transaction checks the mappings and deletes, so no mapping can slip in between.
    const inUse = await this.#deps.store.softDeleteIdentity(tenantId, identityId, this.#deps.clock.now());
    if (inUse > 0) {
      throw new AppError(
        'identity_in_use',
        `${inUse} enabled mapping(s) use this identity; disable them first.`,
      );
    }
    await this.#announce(tenantId, identityId);
  }

  /** @throws AppError `not_found` */
  async get(tenantId: string, identityId: string): Promise<IdentityView> {
    const identity = await this.#require(tenantId, identityId);
    const versions = await this.#deps.store.listVersions(tenantId, identityId);
    return this.#view(identity, versions, await this.#expiringWithinDays(tenantId));
  }

  /**
   * One page of the tenant's live identities, oldest first, each with its versions; the page ends
   * early once it is about PAGE_MAX_BYTES (shared/paging.ts). @throws AppError `invalid_cursor`
   */
  async list(tenantId: string, request: PageRequest): Promise<Collection<IdentityView>> {
    const page = await this.#deps.store.listIdentities(tenantId, request);
    const days = await this.#expiringWithinDays(tenantId);
    return viewPage(page, async (identities) => {
      const versions = await this.#deps.store.listVersionsOfIdentities(
        tenantId,
        identities.map((i) => i.id),
      );
      return identities.map((i) => this.#view(i, versions.get(i.id) ?? [], days));
    });
  }

  /** Every live identity of the tenant with its versions (the expiry scan), read page by page. */
  listAll(tenantId: string): Promise<IdentityView[]> {
    return everyItem((request) => this.list(tenantId, request));
  }

  /** True when the identity exists in this tenant and is not deleted. */
  async exists(tenantId: string, identityId: string): Promise<boolean> {
    const identity = await this.#deps.store.getIdentity(tenantId, identityId);
    return identity !== undefined && !identity.deletedAt;
  }

  /** The active version of a live identity, for the runtime; `undefined` when gone. */
  async getRuntimeIdentity(tenantId: string, identityId: string): Promise<RuntimeIdentity | undefined> {
    const identity = await this.#deps.store.getIdentity(tenantId, identityId);
    if (!identity || identity.deletedAt) return undefined;
    const active = await this.#deps.store.getVersion(tenantId, identityId, identity.activeVersion);
    if (!active) return undefined;
    const status = certificateStatus(active.summary.notAfter, this.#deps.clock.now(), {
      disabled: identity.disabled,
      expiringWithinDays: await this.#expiringWithinDays(tenantId),
    });
    return { identity, active, status };
  }

  /**
   * Decrypts a version's private key (PKCS#8 DER). The caller zeroes the buffer once it has built
   * its TLS context.
   * @throws KmsError `unwrap_failed` when the ciphertext does not belong to this row
   */
  openPrivateKey(version: IdentityVersion): Promise<Buffer> {
    return open(
      this.#deps.kms,
      version.secret,
      identityKeyAad(version.tenantId, version.identityId, version.version),
    );
  }

  async #validate(tenantId: string, upload: IdentityUpload): Promise<ParsedIdentity> {
    try {
      return await this.#deps.parser.parse(tenantId, upload, this.#deps.clock.now());
    } catch (err) {
      throw toAppError(err);
    }
  }

  async #version(
    tenantId: string,
    identityId: string,
    version: number,
    validated: ParsedIdentity,
    now: Date,
    activate: boolean,
  ): Promise<IdentityVersion> {
    const der = exportPkcs8(validated.privateKey);
    try {
      const secret = await seal(this.#deps.kms, der, identityKeyAad(tenantId, identityId, version));
      return {
        identityId,
        tenantId,
        version,
        summary: validated.summary,
        chain: validated.chainSummary,
        certificatesPem: validated.certificatesPem,
        secret,
        createdAt: now,
        ...(activate ? { activatedAt: now } : {}),
      };
    } finally {
      der.fill(0);
    }
  }

  async #require(tenantId: string, identityId: string): Promise<Identity> {
    const identity = await this.#deps.store.getIdentity(tenantId, identityId);
    if (!identity || identity.deletedAt) throw new AppError('not_found', 'No such identity.');
    return identity;
  }

  #announce(tenantId: string, identityId: string): Promise<void> {
    return this.#deps.changes.emit({ tenantId, kind: 'identity', id: identityId });
  }

  #expiringWithinDays(tenantId: string): Promise<number> {
    return this.#deps.expiringWithinDays?.(tenantId) ?? Promise.resolve(7);
  }

  #view(identity: Identity, versions: IdentityVersion[], expiringWithinDays: number): IdentityView {
    const active = versions.find((v) => v.version === identity.activeVersion);
    return {
      id: identity.id,
      tenant: identity.tenantId,
      name: identity.name,
      status: active
        ? certificateStatus(active.summary.notAfter, this.#deps.clock.now(), {
            disabled: identity.disabled,
            expiringWithinDays,
          })
        : 'disabled',
      activeVersion: identity.activeVersion,
      versions: versions.map(versionView),
      createdAt: identity.createdAt.toISOString(),
      updatedAt: identity.updatedAt.toISOString(),
    };
  }
}

function exportPkcs8(key: KeyObject): Buffer {
  return key.export({ type: 'pkcs8', format: 'der' });
}

function versionView(v: IdentityVersion): VersionView {
  const s = v.summary;
  return {
    version: v.version,
    ...certificateFacts(s),
    signatureAlgorithm: s.signatureAlgorithm,
    subjectAltNames: s.subjectAltNames,
    chain: v.chain.map((c) => ({ ...c, notAfter: c.notAfter.toISOString() })),
    createdAt: v.createdAt.toISOString(),
    ...(v.activatedAt ? { activatedAt: v.activatedAt.toISOString() } : {}),
    ...(v.activateAt ? { activateAt: v.activateAt.toISOString() } : {}),
  };
}
