import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { Collection, problemResponses, TenantParams } from '../http/schemas.js';
import { PageQuery, pageRequest } from '../shared/paging.js';
import type { AuditService } from './audit.js';
import {
  AlertSchema,
  AuditEventSchema,
  AuditQuery,
  NotificationSchema,
  NotificationSettingsSchema,
  PutNotificationSettingsBody,
  PutNotificationSettingsResponse,
} from './schemas.js';
import type { LifecycleService } from './service.js';
import type { NotificationSettingsService } from './settings.js';
import { notificationSettingsUpdated } from './settings-audit.js';

export interface LifecycleRouteOptions {
  settings: NotificationSettingsService;
  audit: AuditService;
  /** Alerts and notifications. */
  lifecycle: LifecycleService;
}

/** `/v1/tenants/{tenant}/alerts`, `notification-settings`, `notifications`, `audit-events`. */
export const lifecycleRoutes: FastifyPluginAsyncTypebox<LifecycleRouteOptions> = async (app, options) => {
  const { settings, audit, lifecycle } = options;
  app.addSchema(NotificationSettingsSchema);

  app.get(
    '/v1/tenants/:tenant/alerts',
    {
      config: { permission: 'alerts:read' },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Current expiry alerts (raised by the expiry scanner), soonest first; page with limit and cursor',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(AlertSchema), ...problemResponses },
      },
    },
    async (request) => {
      return lifecycle.listAlerts(request.params.tenant, pageRequest(request.query));
    },
  );

  app.get(
    '/v1/tenants/:tenant/notification-settings',
    {
      config: { permission: 'notifications:read' },
      schema: {
        tags: ['lifecycle'],
        summary: 'E-mail addresses, webhook URLs and expiry thresholds (default [7] days)',
        params: TenantParams,
        response: { 200: Type.Ref('NotificationSettings'), ...problemResponses },
      },
    },
    async (request) => {
      return settings.get(request.params.tenant);
    },
  );

  app.put(
    '/v1/tenants/:tenant/notification-settings',
    {
      config: { permission: 'notifications:write' },
      schema: {
        tags: ['lifecycle'],
        summary: 'Replace the notification settings; the webhook signing secret is returned once when made',
        params: TenantParams,
        body: PutNotificationSettingsBody,
        response: {
          200: PutNotificationSettingsResponse,
          ...problemResponses,
          409: Type.Ref('Problem'),
          422: Type.Ref('Problem'),
        },
      },
    },
    async (request) => {
      const { settings: view, webhookSecret } = await settings.put(request.params.tenant, request.body);
      request.audit = notificationSettingsUpdated(request.params.tenant, view, webhookSecret !== undefined);
      return { ...view, ...(webhookSecret ? { webhookSecret } : {}) };
    },
  );

  app.get(
    '/v1/tenants/:tenant/notifications',
    {
      config: { permission: 'notifications:read' },
      schema: {
        tags: ['lifecycle'],
        summary:
          'Expiry notifications sent or being sent, newest first, with every delivery attempt; page with limit and cursor',
        params: TenantParams,
        querystring: PageQuery,
        response: { 200: Collection(NotificationSchema), ...problemResponses },
      },
    },
    async (request) => {
      return lifecycle.listNotifications(request.params.tenant, pageRequest(request.query));
    },
  );

  app.get(
    '/v1/tenants/:tenant/audit-events',
    {
      config: { permission: 'audit:read' },
      schema: {
        tags: ['lifecycle'],
        summary:
          'The audit log, newest first; filter by action, objectType, objectId, since, until; page with cursor',
        params: TenantParams,
        querystring: AuditQuery,
        response: { 200: Collection(AuditEventSchema), ...problemResponses },
      },
    },
    async (request) => {
      const q = request.query;
      const filter = {
        ...(q.action ? { action: q.action } : {}),
        ...(q.objectType ? { objectType: q.objectType } : {}),
        ...(q.objectId ? { objectId: q.objectId } : {}),
        ...(q.since ? { since: new Date(q.since) } : {}),
        ...(q.until ? { until: new Date(q.until) } : {}),
      };
      return audit.list(request.params.tenant, filter, pageRequest(q));
    },
  );
};
