/**
 * The catalogue of every error code Twoway answers with. Each code maps to an HTTP status and a
 * short title; the problem `type` is `/docs/errors#<code>` (RFC 9457 §3.1.1). Codes are stable:
 * callers and tests match on them, never on text. `docs/errors.md` lists the same codes (a test
 * checks that the two agree).
 */
export const catalogue = {
  // request and auth
  bad_request: { status: 400, title: 'Invalid request' },
  unauthorized: { status: 401, title: 'Missing or invalid credentials' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  parse_queue_full: { status: 429, title: 'Too many uploads waiting to be checked' },
  internal_error: { status: 500, title: 'Internal error' },
  not_ready: { status: 503, title: 'Not ready' },
  storage_full: { status: 503, title: 'Storage full' },
  // lists and quotas
  invalid_cursor: { status: 400, title: 'Invalid cursor' },
  quota_exceeded: { status: 409, title: 'Quota exceeded' },
  // tenants
  tenant_exists: { status: 409, title: 'Tenant already exists' },
  // key custody (CLI)
  backup_invalid: { status: 400, title: 'Not a usable backup' },
  store_not_empty: { status: 409, title: 'The store already holds data' },
  // identity upload (RFC 7292 PKCS#12, RFC 5280 X.509, RFC 5958 PKCS#8)
  unsupported_format: { status: 422, title: 'Unsupported or unreadable format' },
  bad_password: { status: 422, title: 'Wrong password' },
  no_private_key: { status: 422, title: 'No private key' },
  no_certificate: { status: 422, title: 'No certificate' },
  multiple_private_keys: { status: 422, title: 'More than one private key' },
  key_mismatch: { status: 422, title: 'Private key does not match the certificate' },
  certificate_expired: { status: 422, title: 'Certificate expired' },
  certificate_not_yet_valid: { status: 422, title: 'Certificate not yet valid' },
  weak_key: { status: 422, title: 'Key too weak' },
  unsupported_key_type: { status: 422, title: 'Unsupported key type' },
  weak_signature: { status: 422, title: 'Weak signature algorithm' },
  chain_mismatch: { status: 422, title: 'Chain does not link up' },
  client_auth_not_allowed: { status: 422, title: 'Extended key usage does not allow clientAuth' },
  digital_signature_not_allowed: { status: 422, title: 'Key usage does not allow digitalSignature' },
  java_keystore: { status: 422, title: 'Java keystore: convert it to PKCS#12' },
  invalid_trust_anchors: { status: 422, title: 'Invalid trust anchors' },
  trust_anchors_too_large: { status: 413, title: 'Too many trust anchors' },
  // identities
  identity_in_use: { status: 409, title: 'Identity in use by a mapping' },
  version_not_usable: { status: 409, title: 'Version cannot be activated' },
  // mappings
  mapping_url_invalid: { status: 422, title: 'Invalid mapping URL' },
  // inbound: client certificates, platform CA, edge listener
  private_key_not_accepted: { status: 422, title: 'Private keys are not accepted here' },
  client_certificate_exists: { status: 409, title: 'Client certificate already registered' },
  issued_certificate_not_accepted: { status: 422, title: 'Platform-issued certificates cannot be uploaded' },
  reserved_tenant_name: { status: 422, title: 'Certificate names a Twoway tenant' },
  key_type_not_allowed: { status: 422, title: 'Key type not allowed' },
  validity_too_long: { status: 422, title: 'Validity too long' },
  invalid_csr: { status: 422, title: 'Invalid certificate signing request' },
  client_certificate_required: { status: 401, title: 'Client certificate required' },
  client_certificate_unknown: { status: 403, title: 'Client certificate not registered' },
  client_certificate_expired: { status: 403, title: 'Client certificate expired' },
  client_certificate_not_yet_valid: { status: 403, title: 'Client certificate not yet valid' },
  client_certificate_revoked: { status: 403, title: 'Client certificate revoked' },
  client_certificate_tenant_mismatch: {
    status: 403,
    title: 'Client certificate and API key of different tenants',
  },
  edge_upstream_not_configured: { status: 404, title: 'No platform upstream configured' },
  edge_not_enabled: { status: 403, title: 'Inbound mTLS not enabled for this tenant' },
  operator_only: { status: 403, title: 'Only the operator may do this' },
  csr_not_pending: { status: 409, title: 'Certificate signing request already decided' },
  // lifecycle
  notification_settings_invalid: { status: 422, title: 'Invalid notification settings' },
  // runtime forward (also sent as the Twoway-Error header)
  no_mapping: { status: 403, title: 'No mapping covers this URL' },
  identity_expired: { status: 409, title: 'Identity expired' },
  identity_disabled: { status: 409, title: 'Identity disabled' },
  identity_not_yet_valid: { status: 409, title: 'Identity not yet valid' },
  forward_url_invalid: { status: 400, title: 'Invalid forward URL' },
  forward_destination_blocked: { status: 403, title: 'Forward destination blocked' },
  upstream_tls_failed: { status: 502, title: 'TLS with the remote server failed' },
  upstream_unreachable: { status: 502, title: 'Remote server unreachable' },
  upstream_protocol_error: { status: 502, title: 'Remote server answered outside HTTP' },
  upstream_timeout: { status: 504, title: 'Remote server timed out' },
  // connections (saved external API requests); OAuth 2.0 client credentials (RFC 6749 §4.4, RFC 8705)
  connection_invalid: { status: 422, title: 'Invalid connection' },
  connection_exists: { status: 409, title: 'Connection name already taken' },
  connection_not_found: { status: 404, title: 'No such connection' },
  connection_disabled: { status: 409, title: 'Connection disabled' },
  client_certificate_unavailable: { status: 409, title: 'No usable client certificate' },
  oauth_token_failed: { status: 502, title: 'OAuth token request failed' },
  // people: permissions, roles, members, sessions, portal links
  forbidden: { status: 403, title: 'Permission missing' },
  csrf_failed: { status: 403, title: 'CSRF token missing or wrong' },
  rate_limited: { status: 429, title: 'Too many requests' },
  role_in_use: { status: 409, title: 'Role held by members or API keys' },
  built_in_role: { status: 409, title: 'Built-in roles cannot be changed' },
  unknown_role: { status: 422, title: 'Unknown role' },
  return_url_invalid: { status: 422, title: 'Invalid return URL' },
  portal_link_invalid: { status: 404, title: 'Portal link unknown, used or expired' },
} as const satisfies Record<string, { status: number; title: string }>;

/** A stable snake_case error code from {@link catalogue}. */
export type ErrorCode = keyof typeof catalogue;

/** True when `code` names an entry of the catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(catalogue, code);
}
