import { Type } from '@sinclair/typebox';
import { TRUST_ANCHORS_MAX_BYTES, TRUST_ANCHORS_MAX_CERTIFICATES } from '../certificates/index.js';
import { Timestamp } from '../http/schemas.js';

const Match = Type.Union([Type.Literal('exact'), Type.Literal('prefix'), Type.Literal('any')], {
  description:
    'exact: whole URL; prefix (default): same origin, path prefix on a / boundary; any: every URL of the service',
});
const Service = Type.String({
  pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
  description: 'api, webhooks, idp, or a platform-defined name',
});

const TRUST_ANCHORS = `CA certificates (PEM) that verify the remote server instead of the system roots; at most ${
  TRUST_ANCHORS_MAX_BYTES / 1024
} KiB and ${TRUST_ANCHORS_MAX_CERTIFICATES} certificates (413 trust_anchors_too_large)`;

export const MappingSchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String(),
    name: Type.String(),
    service: Type.String(),
    url: Type.String(),
    match: Match,
    identityId: Type.String(),
    enabled: Type.Boolean(),
    deleted: Type.Boolean(),
    trustAnchorsPem: Type.Optional(Type.String()),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Mapping' },
);

export const CreateMappingBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    service: Service,
    url: Type.Optional(Type.String({ maxLength: 2048 })),
    match: Type.Optional(Match),
    identityId: Type.String(),
    enabled: Type.Optional(Type.Boolean()),
    trustAnchorsPem: Type.Optional(Type.String({ maxLength: 1_048_576, description: TRUST_ANCHORS })),
  },
  { additionalProperties: false },
);

export const PatchMappingBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    url: Type.Optional(Type.String({ maxLength: 2048 })),
    match: Type.Optional(Match),
    identityId: Type.Optional(Type.String()),
    enabled: Type.Optional(Type.Boolean()),
    trustAnchorsPem: Type.Optional(
      Type.Union([Type.String({ maxLength: 1_048_576, description: TRUST_ANCHORS }), Type.Null()]),
    ),
  },
  { additionalProperties: false },
);

export const MappingParams = Type.Object({ tenant: Type.String(), id: Type.String() });
