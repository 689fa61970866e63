import { Type } from '@sinclair/typebox';
import { Literals, Timestamp } from '../http/schemas.js';
import { PERMISSIONS, ROLE_NAME_PATTERN } from './permissions.js';

/** One permission of the catalogue. */
export const PermissionSchema = Literals([...PERMISSIONS]);

/** `^[A-Za-z0-9][A-Za-z0-9._:@|+=-]{0,199}$`: the platform's own user ids (UUIDs, `auth0|...`, e-mails). */
export const MEMBER_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@|+=-]{0,199}$';

const RoleName = Type.String({ pattern: ROLE_NAME_PATTERN, maxLength: 63 });
const RoleNames = Type.Array(RoleName, { maxItems: 20, uniqueItems: true });

/** Every list of this domain pages like the others (API.md "Tenants (additions)"). */
export const PageQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 400 })),
});

export const RoleParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), role: RoleName });

export const PutRoleBody = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 500 })),
    permissions: Type.Array(PermissionSchema, { maxItems: PERMISSIONS.length, uniqueItems: true }),
  },
  { additionalProperties: false },
);

export const RoleSchema = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    permissions: Type.Array(PermissionSchema),
    builtIn: Type.Boolean({ description: 'admin and viewer: fixed, cannot be changed or deleted' }),
    createdAt: Type.Optional(Timestamp),
    updatedAt: Type.Optional(Timestamp),
  },
  { $id: 'Role' },
);

export const MemberParams = Type.Object({
  tenant: Type.String({ maxLength: 63 }),
  memberId: Type.String({ pattern: MEMBER_ID_PATTERN, maxLength: 200 }),
});

export const PutMemberBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254 }),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    roles: RoleNames,
  },
  { additionalProperties: false },
);

export const MemberSchema = Type.Object(
  {
    id: Type.String({ description: "the platform's own user id" }),
    tenant: Type.String(),
    email: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    roles: Type.Array(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Member' },
);

export const CreateApiKeyBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    roles: Type.Optional({ ...RoleNames, description: 'default ["admin"]' }),
  },
  { additionalProperties: false },
);

export const CreatedApiKeySchema = Type.Object({
  id: Type.String(),
  apiKey: Type.String({ description: 'Shown once; only its hash is stored' }),
  name: Type.String(),
  roles: Type.Array(Type.String()),
  createdAt: Timestamp,
});

export const ApiKeyListItemSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  roles: Type.Array(Type.String()),
  createdAt: Timestamp,
  lastUsedAt: Type.Optional({ ...Timestamp, description: 'to the minute' }),
});

export const ApiKeyParams = Type.Object({ tenant: Type.String({ maxLength: 63 }), id: Type.String() });

export const CreatePortalLinkBody = Type.Object(
  {
    memberId: Type.String({ pattern: MEMBER_ID_PATTERN, maxLength: 200 }),
    returnUrl: Type.Optional(
      Type.String({ maxLength: 2048, description: 'a same-origin path under /ui/ (default /ui/)' }),
    ),
    intent: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9-]{0,63}$',
        description: 'what the member came to do, passed to the UI as ?intent=',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PortalLinkSchema = Type.Object({
  url: Type.String({ description: 'single use; opening it signs the member in and redirects into /ui/' }),
  expiresAt: Timestamp,
});

export const SessionSchema = Type.Object({
  kind: Literals(['member', 'operator']),
  tenant: Type.Optional(Type.String()),
  memberId: Type.Optional(Type.String()),
  email: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  permissions: Type.Array(PermissionSchema),
  csrfToken: Type.String({ description: 'send it as the Twoway-CSRF header with every unsafe request' }),
  expiresAt: { ...Timestamp, description: 'the absolute end of the session' },
  idleExpiresAt: { ...Timestamp, description: 'the end if nothing else is sent before it' },
});

export const OperatorSignInBody = Type.Object(
  { operatorToken: Type.String({ minLength: 1, maxLength: 1024 }) },
  { additionalProperties: false },
);
