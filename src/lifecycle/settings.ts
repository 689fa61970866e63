import net from 'node:net';
import type { Static } from '@sinclair/typebox';
import { AppError } from '../errors/app-error.js';
import { open, seal } from '../kms/envelope.js';
import type { Kms } from '../kms/types.js';
import { isBlockedAddress } from '../net/address-guard.js';
import type { ChangeBus } from '../shared/changes.js';
import type { Clock } from '../shared/clock.js';
import { isEmailAddress } from '../shared/email-address.js';
import type { LifecycleStore, NotificationSettings } from '../store/index.js';
import type { NotificationSettingsSchema } from './schemas.js';
import { newWebhookSecret } from './signing.js';

/** Thresholds when a tenant has set none: alert 7 days ahead (ARCHITECTURE.md "Lifecycle"). */
export const DEFAULT_THRESHOLDS_DAYS: readonly number[] = [7];

const MAX_EMAILS = 20;
const MAX_WEBHOOKS = 10;
const MAX_THRESHOLDS = 10;
const MAX_THRESHOLD_DAYS = 3650;

/**
 * Notification settings as the API shows them; the webhook secret itself never appears, only when
 * the current one was made (`webhookSecretCreatedAt`, absent until the first).
 */
export type NotificationSettingsView = Static<typeof NotificationSettingsSchema>;

/** `PUT .../notification-settings`. */
export interface NotificationSettingsInput {
  emails: string[];
  /** Members whose roles own integrations get the e-mails too; default true. */
  notifyMembers?: boolean;
  webhookUrls: string[];
  thresholdsDays?: number[];
  /** Replace the webhook signing secret (the new one is returned once). */
  rotateWebhookSecret?: boolean;
}

/** Associated data binding a sealed webhook secret to its tenant (see kms/envelope.ts). */
export function webhookSecretAad(tenantId: string): Buffer {
  return Buffer.from(`twoway/v1/webhook-secret/${tenantId}`, 'utf8');
}

function invalid(detail: string): AppError {
  return new AppError('notification_settings_invalid', detail);
}

/**
 * Parses a webhook URL: absolute `http:` or `https:`, no credentials, no fragment, a host and a port
 * in 1..65535. Tenants choose these URLs, so an IP-literal host in a loopback, private,
 * link-local or metadata range is refused unless `allowPrivate` (TWOWAY_FORWARD_ALLOW_PRIVATE), as
 * for forward; names are checked after DNS when the webhook is sent (guardedLookup).
 * @throws AppError `notification_settings_invalid`
 */
export function parseWebhookUrl(raw: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('A webhook URL is not an absolute URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw invalid('A webhook URL must use https or http.');
  if (url.username !== '' || url.password !== '') throw invalid('A webhook URL must not carry credentials.');
  if (url.hash !== '') throw invalid('A webhook URL must not have a fragment.');
  if (url.hostname === '' || url.port === '0')
    throw invalid('A webhook URL needs a host and a port 1 to 65535.');
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (!allowPrivate && net.isIP(host) !== 0 && isBlockedAddress(host)) {
    throw invalid('A webhook URL points to a blocked (loopback, private or link-local) address.');
  }
  return url;
}

/**
 * A tenant's notification settings: e-mail addresses, webhook URLs, expiry thresholds (days) and
 * the webhook signing secret. The secret is made by Twoway on the first PUT that sets a webhook URL
 * (or with `rotateWebhookSecret`), returned once in that PUT's answer, and stored sealed with
 * envelope encryption like a private key. Thresholds are cached per tenant (they decide every
 * identity's status) and dropped when this process changes them or another process changed the store.
 */
export class NotificationSettingsService {
  readonly #store: Pick<LifecycleStore, 'getNotificationSettings' | 'putNotificationSettings'>;
  readonly #kms: Kms;
  readonly #clock: Clock;
  readonly #allowPrivate: boolean;
  readonly #changes: ChangeBus;
  readonly #maxTargets: number | undefined;
  readonly #thresholds = new Map<string, Promise<number[]>>();

  constructor(deps: {
    store: Pick<LifecycleStore, 'getNotificationSettings' | 'putNotificationSettings'>;
    kms: Kms;
    clock: Clock;
    changes: ChangeBus;
    allowPrivate: boolean;
    /** Most e-mail addresses plus webhook URLs (TWOWAY_QUOTA_NOTIFICATION_TARGETS); no quota when absent. */
    maxTargets?: number;
  }) {
    this.#store = deps.store;
    this.#kms = deps.kms;
    this.#clock = deps.clock;
    this.#allowPrivate = deps.allowPrivate;
    this.#changes = deps.changes;
    this.#maxTargets = deps.maxTargets;
    deps.changes.on(
      (change) => {
        if (change.kind === 'tenant') this.#thresholds.delete(change.tenantId);
      },
      () => this.#thresholds.clear(),
    );
  }

  async get(tenantId: string): Promise<NotificationSettingsView> {
    const stored = await this.#store.getNotificationSettings(tenantId);
    return view(stored);
  }

  /** The stored settings, or the defaults (no addresses, `[7]`). */
  async settings(tenantId: string): Promise<Omit<NotificationSettings, 'updatedAt'> & { updatedAt?: Date }> {
    return (
      (await this.#store.getNotificationSettings(tenantId)) ?? {
        tenantId,
        emails: [],
        notifyMembers: true,
        webhookUrls: [],
        thresholdsDays: [...DEFAULT_THRESHOLDS_DAYS],
      }
    );
  }

  /**
   * Replaces the settings. Thresholds default to `[7]` and are stored largest first.
   * @returns the new view, plus `webhookSecret` when a secret was made now (shown only this once)
   * @throws AppError `notification_settings_invalid`; `quota_exceeded` for more addresses and URLs
   *   together than `maxTargets` (nothing is stored)
   */
  async put(
    tenantId: string,
    input: NotificationSettingsInput,
  ): Promise<{ settings: NotificationSettingsView; webhookSecret?: string }> {
    const emails = uniq(input.emails.map((e) => e.trim()));
    if (emails.length > MAX_EMAILS) throw invalid(`At most ${MAX_EMAILS} e-mail addresses.`);
    for (const email of emails) {
      if (!isEmailAddress(email)) throw invalid(`"${email.slice(0, 80)}" is not an e-mail address.`);
    }
    const webhookUrls = uniq(
      input.webhookUrls.map((u) => parseWebhookUrl(u.trim(), this.#allowPrivate).toString()),
    );
    if (webhookUrls.length > MAX_WEBHOOKS) throw invalid(`At most ${MAX_WEBHOOKS} webhook URLs.`);
    const targets = emails.length + webhookUrls.length;
    if (this.#maxTargets !== undefined && targets > this.#maxTargets) {
      throw new AppError(
        'quota_exceeded',
        `${targets} e-mail addresses and webhook URLs are more than this tenant's quota of ${this.#maxTargets} notification targets (TWOWAY_QUOTA_NOTIFICATION_TARGETS).`,
      );
    }
    const thresholdsDays = uniq(input.thresholdsDays ?? [...DEFAULT_THRESHOLDS_DAYS]).sort((a, b) => b - a);
    if (thresholdsDays.length === 0 || thresholdsDays.length > MAX_THRESHOLDS)
      throw invalid(`Give 1 to ${MAX_THRESHOLDS} thresholds.`);
    for (const days of thresholdsDays) {
      if (!Number.isInteger(days) || days < 1 || days > MAX_THRESHOLD_DAYS)
        throw invalid(`Thresholds are whole days from 1 to ${MAX_THRESHOLD_DAYS}.`);
    }
    const now = this.#clock.now();
    const previous = await this.#store.getNotificationSettings(tenantId);
    const next: NotificationSettings = {
      tenantId,
      emails,
      notifyMembers: input.notifyMembers ?? true,
      webhookUrls,
      thresholdsDays,
      updatedAt: now,
    };
    let webhookSecret: string | undefined;
    const needsSecret =
      input.rotateWebhookSecret === true || (!previous?.webhookSecret && webhookUrls.length > 0);
    if (needsSecret) {
      webhookSecret = newWebhookSecret();
      const plaintext = Buffer.from(webhookSecret, 'utf8');
      try {
        next.webhookSecret = await seal(this.#kms, plaintext, webhookSecretAad(tenantId));
      } finally {
        plaintext.fill(0);
      }
      next.webhookSecretCreatedAt = now;
    } else if (previous?.webhookSecret) {
      next.webhookSecret = previous.webhookSecret;
      if (previous.webhookSecretCreatedAt) next.webhookSecretCreatedAt = previous.webhookSecretCreatedAt;
    }
    await this.#store.putNotificationSettings(tenantId, next);
    this.#thresholds.delete(tenantId);
    // Thresholds decide statuses: the runtime drops the tenant's cached ones, the scheduler rescans it.
    await this.#changes.emit({ tenantId, kind: 'tenant', id: tenantId });
    return { settings: view(next), ...(webhookSecret ? { webhookSecret } : {}) };
  }

  /** The tenant's thresholds in days, largest first (cached). */
  thresholdsDays(tenantId: string): Promise<number[]> {
    let found = this.#thresholds.get(tenantId);
    if (!found) {
      found = this.#store
        .getNotificationSettings(tenantId)
        .then((s) => (s ? [...s.thresholdsDays] : [...DEFAULT_THRESHOLDS_DAYS]));
      this.#thresholds.set(tenantId, found);
      found.catch(() => this.#thresholds.delete(tenantId));
    }
    return found;
  }

  /** The first (largest) threshold: within it a certificate is `expiring`. */
  async firstThresholdDays(tenantId: string): Promise<number> {
    return (await this.thresholdsDays(tenantId))[0] ?? DEFAULT_THRESHOLDS_DAYS[0] ?? 7;
  }

  /** The webhook signing secret in plaintext, for signing only; undefined when none was made. */
  async webhookSecret(tenantId: string): Promise<string | undefined> {
    const stored = await this.#store.getNotificationSettings(tenantId);
    if (!stored?.webhookSecret) return undefined;
    const plaintext = await open(this.#kms, stored.webhookSecret, webhookSecretAad(tenantId));
    try {
      return plaintext.toString('utf8');
    } finally {
      plaintext.fill(0);
    }
  }
}

function uniq<T>(values: T[]): T[] {
  return [...new Set(values)];
}

function view(s: NotificationSettings | undefined): NotificationSettingsView {
  if (!s) {
    return { emails: [], notifyMembers: true, webhookUrls: [], thresholdsDays: [...DEFAULT_THRESHOLDS_DAYS] };
  }
  return {
    emails: s.emails,
    notifyMembers: s.notifyMembers,
    webhookUrls: s.webhookUrls,
    thresholdsDays: s.thresholdsDays,
    ...(s.webhookSecretCreatedAt ? { webhookSecretCreatedAt: s.webhookSecretCreatedAt.toISOString() } : {}),
    updatedAt: s.updatedAt.toISOString(),
  };
}
