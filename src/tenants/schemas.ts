import { Type } from '@sinclair/typebox';
import { Timestamp } from '../http/schemas.js';
import { TENANT_ID_PATTERN } from './service.js';

export const CreateTenantBody = Type.Object(
  {
    id: Type.String({ pattern: TENANT_ID_PATTERN }),
    name: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);

export const TenantSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Timestamp,
  edgeEnabled: Type.Optional(
    Type.Boolean({
      description:
        'Inbound mTLS at the edge (operator switch; TWOWAY_EDGE_DEFAULT_ENABLED until switched); off: 403 edge_not_enabled',
    }),
  ),
  defaultIdentityId: Type.Optional(
    Type.String({
      description:
        'Presented by connections whose client-certificate switch is on and that name no identity; the first identity uploaded becomes it',
    }),
  ),
});

export const PatchTenantBody = Type.Object(
  {
    edgeEnabled: Type.Optional(Type.Boolean({ description: 'Operator token only' })),
    defaultIdentityId: Type.Optional(
      Type.Union([Type.String({ maxLength: 64 }), Type.Null()], { description: 'null clears it' }),
    ),
  },
  { additionalProperties: false },
);

export const CreatedTenantSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Timestamp,
  apiKey: Type.String({ description: 'Shown once; only its hash is stored' }),
  apiKeyId: Type.Optional(
    Type.String({
      description: "The key's public id: the client id of `Authorization: Basic base64(id:apiKey)`",
    }),
  ),
});
