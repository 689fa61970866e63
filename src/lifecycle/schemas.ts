import { Type } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';
import { PageQuery } from '../shared/paging.js';

export const AlertSchema = Type.Object({
  kind: Type.Union([Type.Literal('expiring'), Type.Literal('expired')]),
  objectType: Type.String({ description: 'identity, client_certificate, ...' }),
  objectId: Type.String(),
  objectVersion: Type.String({ description: 'identity version number, or the certificate fingerprint' }),
  name: Type.String(),
  fingerprintSha256: Type.String(),
  notAfter: Timestamp,
  daysLeft: Type.Integer({ description: 'whole days left, rounded up; negative once expired' }),
  thresholdDays: Type.Integer({ description: 'the threshold crossed; 0 for expired' }),
  raisedAt: Timestamp,
});

const NotifyMembers = Type.Boolean({
  description:
    'members with role admin or a role granting connections:write also receive the expiry e-mails (default true)',
});

export const NotificationSettingsSchema = Type.Object(
  {
    emails: Type.Array(Type.String()),
    notifyMembers: NotifyMembers,
    webhookUrls: Type.Array(Type.String()),
    thresholdsDays: Type.Array(Type.Integer(), {
      description: 'largest first; the first makes a status expiring',
    }),
    webhookSecretCreatedAt: Type.Optional(Timestamp),
    updatedAt: Type.Optional(Timestamp),
  },
  { $id: 'NotificationSettings' },
);

export const PutNotificationSettingsBody = Type.Object(
  {
    emails: Type.Array(Type.String({ maxLength: 254 }), { maxItems: 20 }),
    notifyMembers: Type.Optional(NotifyMembers),
    webhookUrls: Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 10 }),
    thresholdsDays: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 3650 }), {
        minItems: 1,
        maxItems: 10,
        description: 'default [7]',
      }),
    ),
    rotateWebhookSecret: Type.Optional(
      Type.Boolean({ description: 'make a new webhook signing secret (returned once, in this answer)' }),
    ),
  },
  { additionalProperties: false },
);

export const PutNotificationSettingsResponse = Type.Object({
  emails: Type.Array(Type.String()),
  notifyMembers: NotifyMembers,
  webhookUrls: Type.Array(Type.String()),
  thresholdsDays: Type.Array(Type.Integer()),
  webhookSecretCreatedAt: Type.Optional(Timestamp),
  updatedAt: Type.Optional(Timestamp),
  webhookSecret: Type.Optional(
    Type.String({
      description:
        'The webhook signing secret (whsec_...), only in the answer that made it: the first PUT with a webhook URL, or rotateWebhookSecret',
    }),
  ),
});

export const AuditEventSchema = Type.Object({
  id: Type.String(),
  at: Timestamp,
  actor: Type.String({
    description: 'operator, api-key:<id>, member:<id> (detail.actorEmail: the e-mail then), scheduler or cli',
  }),
  action: Type.String({ description: '<object>.<verb>, e.g. identity.add_version' }),
  objectType: Type.String(),
  objectId: Type.String(),
  sourceAddress: Type.Optional(Type.String()),
  detail: Type.Record(Type.String(), Type.Unknown()),
});

export const AuditQuery = Type.Object({
  action: Type.Optional(Type.String({ maxLength: 100 })),
  objectType: Type.Optional(Type.String({ maxLength: 100 })),
  objectId: Type.Optional(Type.String({ maxLength: 200 })),
  since: Type.Optional({ ...Timestamp, description: 'inclusive' }),
  until: Type.Optional({ ...Timestamp, description: 'exclusive' }),
  ...PageQuery.properties,
});

const AttemptSchema = Type.Object({
  attempt: Type.Integer(),
  at: Timestamp,
  ok: Type.Boolean(),
  statusCode: Type.Optional(Type.Integer()),
  error: Type.Optional(Type.String()),
  durationMs: Type.Integer(),
});

export const NotificationSchema = Type.Object({
  id: Type.String({ description: 'the event id (Twoway-Event-Id)' }),
  kind: Type.Union([Type.Literal('expiring'), Type.Literal('expired')]),
  objectType: Type.String(),
  objectId: Type.String(),
  objectVersion: Type.String(),
  thresholdDays: Type.Integer(),
  notAfter: Timestamp,
  createdAt: Timestamp,
  deliveries: Type.Array(
    Type.Object({
      id: Type.String(),
      channel: Type.Union([Type.Literal('email'), Type.Literal('webhook')]),
      target: Type.String(),
      status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')]),
      attempts: Type.Array(AttemptSchema),
      nextAttemptAt: Type.Optional(Timestamp),
      deliveredAt: Type.Optional(Timestamp),
      lastError: Type.Optional(Type.String()),
    }),
  ),
});
