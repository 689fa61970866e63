import type { NotificationSettingsService } from './settings.js';

/** The addresses a tenant's expiry e-mails go to now (see {@link expiryRecipients}). */
export type Recipients = (tenantId: string) => Promise<string[]>;

/**
 * Who gets a tenant's expiry e-mails: the notification settings' `emails`, plus, unless the
 * settings say `notifyMembers: false`, the members whose roles own integrations (`admin`, or a role
 * granting `connections:write`; `integrationOwners` from people/service.ts). Each address once,
 * compared without case, so a person named twice (in the settings and as a member, or by two
 * roles) gets one e-mail. Asked when a notification is claimed and again before each attempt, so a
 * member removed or demoted in between is left out at once.
 */
export function expiryRecipients(
  settings: Pick<NotificationSettingsService, 'settings'>,
  integrationOwners?: (tenantId: string) => Promise<string[]>,
): Recipients {
  return async (tenantId) => {
    const current = await settings.settings(tenantId);
    const members = current.notifyMembers && integrationOwners ? await integrationOwners(tenantId) : [];
    return uniqueAddresses([...current.emails, ...members]);
  };
}

/** `addresses` without repeats, compared without case; the first spelling is kept. */
export function uniqueAddresses(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const unique: string[] = [];
  for (const address of addresses) {
    const key = address.trim().toLowerCase();
    if (key === '' || seen.has(key)) continue;
    seen.add(key);
    unique.push(address.trim());
  }
  return unique;
}
