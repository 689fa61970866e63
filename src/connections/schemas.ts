import { Type } from '@sinclair/typebox';
import { Literals, Timestamp } from '../http/schemas.js';

/** The reasons a connection's client certificate cannot be presented (the greyed-out switch). */
export const UNAVAILABLE_REASONS = [
  'no_identity',
  'identity_expired',
  'identity_disabled',
  'identity_not_yet_valid',
] as const;

const ClientAuthentication = Type.Union(
  [Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('tls_client_auth')],
  {
    description:
      'client_secret_basic / client_secret_post (RFC 6749 §2.3.1) or tls_client_auth (RFC 8705 §2.1: the client certificate authenticates, only client_id is sent)',
  },
);

/** A field name (RFC 9110 §5.1 token). Which names are refused is checked by the service. */
const HeaderName = Type.String({ minLength: 1, maxLength: 100, pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" });
const Secret = (description: string) => Type.String({ minLength: 1, maxLength: 8192, description });
const HttpsUrl = Type.String({ maxLength: 2048 });

/**
 * `auth` of a create or PATCH body: one object per type. Secrets are write-only: required when the
 * type needs one and the connection has none yet (checked by the service, `connection_invalid`);
 * when left out of a PATCH that keeps the type, the stored secret stays.
 */
export const AuthBody = Type.Union([
  Type.Object({ type: Type.Literal('none') }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('basic'),
      username: Type.String({ maxLength: 256, description: 'RFC 7617: no ":"' }),
      password: Type.Optional(Secret('write-only')),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('header'),
      headerName: HeaderName,
      headerValue: Type.Optional(Secret('write-only; replaces what the caller sends under headerName')),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('oauth2_client_credentials'),
      tokenUrl: HttpsUrl,
      clientId: Type.String({ minLength: 1, maxLength: 512 }),
      clientSecret: Type.Optional(Secret('write-only; not used by tls_client_auth')),
      scope: Type.Optional(Type.String({ maxLength: 1024 })),
      audience: Type.Optional(Type.String({ maxLength: 1024 })),
      clientAuthentication: ClientAuthentication,
    },
    { additionalProperties: false },
  ),
]);

/** A connection name: printable ASCII, no leading or trailing space (it travels in `Twoway-Connection`). */
const Name = Type.String({ minLength: 1, maxLength: 200, pattern: '^[!-~]([ -~]*[!-~])?$' });

export const CreateConnectionBody = Type.Object(
  {
    name: Name,
    baseUrl: HttpsUrl,
    auth: Type.Optional(AuthBody),
    clientCertificate: Type.Optional(
      Type.Object(
        { enabled: Type.Boolean(), identityId: Type.Optional(Type.String({ maxLength: 64 })) },
        { additionalProperties: false },
      ),
    ),
    trustAnchorsPem: Type.Optional(Type.String({ maxLength: 1_048_576 })),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const PatchConnectionBody = Type.Object(
  {
    name: Type.Optional(Name),
    baseUrl: Type.Optional(HttpsUrl),
    auth: Type.Optional(AuthBody),
    clientCertificate: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          identityId: Type.Optional(
            Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
              description: "null: present the tenant's default identity",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    trustAnchorsPem: Type.Optional(Type.Union([Type.String({ maxLength: 1_048_576 }), Type.Null()])),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

export const ConnectionSchema = Type.Object(
  {
    id: Type.String(),
    tenant: Type.String(),
    name: Type.String(),
    baseUrl: Type.String(),
    auth: Type.Object({
      type: Literals(['none', 'basic', 'header', 'oauth2_client_credentials']),
      username: Type.Optional(Type.String()),
      headerName: Type.Optional(Type.String()),
      tokenUrl: Type.Optional(Type.String()),
      clientId: Type.Optional(Type.String()),
      scope: Type.Optional(Type.String()),
      audience: Type.Optional(Type.String()),
      clientAuthentication: Type.Optional(ClientAuthentication),
      secretSet: Type.Boolean({ description: 'A secret is stored (it is never shown)' }),
    }),
    clientCertificate: Type.Object({
      enabled: Type.Boolean(),
      identityId: Type.Optional(Type.String({ description: "absent: the tenant's default identity" })),
      available: Type.Boolean({
        description: 'An identity that can be presented now exists (else the switch cannot be turned on)',
      }),
      unavailableReason: Type.Optional(Literals([...UNAVAILABLE_REASONS])),
    }),
    trustAnchorsPem: Type.Optional(Type.String()),
    enabled: Type.Boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
  },
  { $id: 'Connection' },
);

export const ConnectionParams = Type.Object({ tenant: Type.String(), id: Type.String() });
