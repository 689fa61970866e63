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

export const TenantSchema = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Timestamp });

export const CreatedTenantSchema = Type.Object({
  id: Type.String(),
  name: Type.String(),
  createdAt: Timestamp,
  apiKey: Type.String({ description: 'Shown once; only its hash is stored' }),
});
