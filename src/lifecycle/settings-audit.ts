import type { AuditNote } from './audit.js';
import type { NotificationSettingsView } from './settings.js';

/**
 * `notification_settings.update`: how many e-mail addresses and webhook URLs, the thresholds, and
 * whether a webhook signing key was made (never the key).
 */
export function notificationSettingsUpdated(
  tenantId: string,
  view: NotificationSettingsView,
  webhookSigningKeyMade: boolean,
): AuditNote {
  return {
    action: 'notification_settings.update',
    objectType: 'notification_settings',
    objectId: tenantId,
    detail: {
      emails: view.emails.length,
      notifyMembers: view.notifyMembers,
      webhookUrls: view.webhookUrls.length,
      thresholdsDays: view.thresholdsDays,
      // Not `webhookSecret…`: scrubDetail drops every field whose name says "secret".
      webhookSigningKeyMade,
    },
  };
}
