/**
 * OAuth 2.0 client-credentials token client (RFC 6749 §4.4) for connections, with the client
 * authentication methods `client_secret_basic` and `client_secret_post` (RFC 6749 §2.3.1) and
 * `tls_client_auth` (RFC 8705 §2.1).
 *
 * The token request goes over the undici `Dispatcher` the caller passes: the identity version's mTLS
 * Agent from `DispatcherCache.lease()` (forward/dispatchers.ts) when the connection presents a client
 * certificate, or an Agent whose secure context holds only the connection's trust anchors otherwise.
 * Either way it is one of the cache's Agents, so server verification, the SSRF-guarded lookup and the
 * connect timeout are the forward path's own. Over an mTLS Agent the authorization server can bind the
 * token to the certificate (RFC 8705 §3), which is why the token must be fetched with the very identity
 * version that then calls the API.
 */
import { type Dispatcher, request } from 'undici';
import { AppError } from '../errors/app-error.js';
import { mapUpstreamError } from '../forward/proxy.js';
import { parseForwardUrl } from '../net/address-guard.js';

/**
 * How the client authenticates at the token endpoint: RFC 6749 §2.3.1 (`client_secret_basic`:
 * HTTP Basic with the form-urlencoded id and secret; `client_secret_post`: both in the body) or
 * RFC 8705 §2.1 (`tls_client_auth`: the mutual-TLS handshake authenticates, the body sends only
 * `client_id`). Names as registered in the IANA "OAuth Token Endpoint Authentication Methods" registry.
 */
export type ClientAuthentication = 'client_secret_basic' | 'client_secret_post' | 'tls_client_auth';

/** Every {@link ClientAuthentication}, for schemas. */
export const CLIENT_AUTHENTICATIONS: readonly ClientAuthentication[] = [
  'client_secret_basic',
  'client_secret_post',
  'tls_client_auth',
];

/** A connection's OAuth 2.0 client-credentials settings (API.md, Connections: `auth`). */
export interface ClientCredentialsSettings {
  /** Absolute https URL of the token endpoint (RFC 6749 §3.2: no fragment). */
  tokenUrl: string;
  clientId: string;
  /** Required for `client_secret_basic` and `client_secret_post`; never sent with `tls_client_auth`. */
  clientSecret?: string;
  /** Space-separated scope values (RFC 6749 §3.3), sent as `scope` when set. */
  scope?: string;
  /** Sent as `audience` when set (an Auth0/Okta extension; RFC 6749 does not define it). */
  audience?: string;
  clientAuthentication: ClientAuthentication;
}

/** How one token request is made. */
export interface TokenRequestOptions {
  /**
   * The Agent the request goes over (not closed here): `DispatcherCache.lease(credential).dispatcher`,
   * with the identity version's secure context when a certificate is in use, else one holding only the
   * connection's trust anchors. Required to present a client certificate for `tls_client_auth`.
   */
  dispatcher: Dispatcher;
  /** Deadline for the whole request, connect to last body byte, in ms. */
  timeoutMs: number;
  /** `forwardAllowPrivate`: when false a token URL with a blocked IP literal is refused (names are checked by the Agent's lookup). */
  allowPrivate: boolean;
  /** Largest token response body read, in bytes; default {@link DEFAULT_MAX_TOKEN_RESPONSE_BYTES}. */
  maxResponseBytes?: number;
}

/** Default for {@link TokenRequestOptions} `maxResponseBytes`: 64 KiB, far above any real token response. */
export const DEFAULT_MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

/** A successful access token response (RFC 6749 §5.1). */
export interface AccessToken {
  /** The token, an RFC 6750 §2.1 `b64token`. A secret: never log it. */
  accessToken: string;
  /** Always `Bearer` (RFC 6750); other types are refused. */
  tokenType: 'Bearer';
  /** Lifetime in seconds from the response, when the endpoint sent `expires_in`. */
  expiresInS: number | undefined;
  /** The granted scope, when it differs from the requested one (RFC 6749 §5.1). */
  scope: string | undefined;
}

/**
 * Why a token request failed:
 * - `misconfigured`: missing secret, token URL not https, with credentials or a fragment, or blocked;
 * - `endpoint_error`: the endpoint answered with an error (RFC 6749 §5.2) or a non-2xx status;
 * - `invalid_response`: a 2xx that is not a usable token response (not JSON, no `access_token`, a
 *   non-Bearer `token_type`, a bad `expires_in`, larger than `maxResponseBytes`);
 * - `unreachable`: connect, TLS or socket failure ({@link OAuthTokenError.upstreamCode} says which);
 * - `timeout`: no complete answer within `timeoutMs`.
 */
export type OAuthFailureReason =
  | 'misconfigured'
  | 'endpoint_error'
  | 'invalid_response'
  | 'unreachable'
  | 'timeout';

/**
 * The AppError `oauth_token_failed` (502) with the failure's parts for callers and metrics. `detail`
 * holds the endpoint's `error` and a sanitised, bounded `error_description`, never the client secret,
 * the Basic credentials or a token; `cause` holds a transport error only (never a response body).
 */
export class OAuthTokenError extends AppError {
  readonly reason: OAuthFailureReason;
  /** The endpoint's `error` code (RFC 6749 §5.2), sanitised; set for `endpoint_error` when sent. */
  readonly endpointError: string | undefined;
  /** HTTP status of the token response, when one arrived. */
  readonly endpointStatus: number | undefined;
  /** For `unreachable`: the forward code the transport failure maps to (e.g. `upstream_tls_failed`). */
  readonly upstreamCode: string | undefined;

  constructor(
    reason: OAuthFailureReason,
    detail: string,
    parts: { endpointError?: string; endpointStatus?: number; upstreamCode?: string; cause?: unknown } = {},
  ) {
    super('oauth_token_failed', detail, parts.cause === undefined ? undefined : { cause: parts.cause });
    this.reason = reason;
    this.endpointError = parts.endpointError;
    this.endpointStatus = parts.endpointStatus;
    this.upstreamCode = parts.upstreamCode;
  }
}

const MAX_ERROR_CODE_CHARS = 64;
const MAX_ERROR_DESCRIPTION_CHARS = 200;
// RFC 6750 §2.1: the credentials of `Authorization: Bearer` are a b64token.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** application/x-www-form-urlencoded serialisation of one value (RFC 6749 Appendix B). */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/**
 * The `Authorization` value of `client_secret_basic`: RFC 6749 §2.3.1 form-urlencodes the id and the
 * secret before joining them with `:` and base64-encoding (RFC 7617), so a `:` or a non-ASCII character
 * in either survives.
 */
export function basicClientCredentials(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

/**
 * Endpoint text made safe for a detail: each `secrets` occurrence replaced, then everything outside
 * printable ASCII (0x20-0x7E) replaced with `?`, then cut to `maxChars` (with `...`). Replacing before
 * cutting means no prefix of a secret survives at the cut.
 */
export function sanitiseEndpointText(
  text: string,
  maxChars: number,
  secrets: readonly string[] = [],
): string {
  let safe = text;
  for (const secret of secrets) if (secret.length > 0) safe = safe.split(secret).join('[redacted]');
  safe = safe.replace(/[^\x20-\x7e]/g, '?');
  return safe.length > maxChars ? `${safe.slice(0, Math.max(0, maxChars - 3))}...` : safe;
}

function checkedTokenUrl(settings: ClientCredentialsSettings, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = parseForwardUrl(settings.tokenUrl, allowPrivate);
  } catch (err) {
    const blocked = err instanceof AppError && err.code === 'forward_destination_blocked';
    throw new OAuthTokenError(
      'misconfigured',
      blocked
        ? 'The token URL points to a blocked address.'
        : 'The token URL is not an absolute https URL without credentials.',
    );
  }
  if (url.hash !== '') {
    throw new OAuthTokenError(
      'misconfigured',
      'The token URL must not have a fragment (RFC 6749 section 3.2).',
    );
  }
  return url;
}

/** The form body and headers of the token request (RFC 6749 §4.4.2, §2.3.1; RFC 8705 §2.1). */
function tokenRequestOf(settings: ClientCredentialsSettings): {
  body: string;
  headers: Record<string, string>;
} {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (settings.scope) form.set('scope', settings.scope);
  if (settings.audience) form.set('audience', settings.audience);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  const method = settings.clientAuthentication;
  if (method === 'tls_client_auth') {
    // RFC 8705 §2.1: the certificate authenticates; `client_id` identifies, no secret is sent.
    form.set('client_id', settings.clientId);
    return { body: form.toString(), headers };
  }
  const secret = settings.clientSecret;
  if (secret === undefined || secret === '') {
    throw new OAuthTokenError(
      'misconfigured',
      `${method} needs a client secret and the connection has none.`,
    );
  }
  if (method === 'client_secret_basic') {
    headers.authorization = basicClientCredentials(settings.clientId, secret);
  } else if (method === 'client_secret_post') {
    form.set('client_id', settings.clientId);
    form.set('client_secret', secret);
  } else {
    throw new OAuthTokenError('misconfigured', 'Unknown client authentication method.');
  }
  return { body: form.toString(), headers };
}

/** Reads at most `maxBytes` of `body`; more is an `invalid_response` and the rest is not read. */
async function readBounded(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      throw new OAuthTokenError('invalid_response', `The token response is larger than ${maxBytes} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** JSON object of the body, or undefined. The SyntaxError is dropped: its message quotes the body. */
function jsonObject(bytes: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** RFC 6749 §5.2 error response (or any non-2xx) → `endpoint_error` with a safe detail. */
function endpointError(
  status: number,
  json: Record<string, unknown> | undefined,
  secrets: string[],
): OAuthTokenError {
  const code =
    typeof json?.error === 'string' ? sanitiseEndpointText(json.error, MAX_ERROR_CODE_CHARS, secrets) : '';
  const description =
    typeof json?.error_description === 'string'
      ? sanitiseEndpointText(json.error_description, MAX_ERROR_DESCRIPTION_CHARS, secrets)
      : '';
  const what = code === '' ? 'without an OAuth error' : description === '' ? code : `${code}: ${description}`;
  return new OAuthTokenError(
    'endpoint_error',
    `The token endpoint refused the request (HTTP ${status}): ${what}.`,
    {
      ...(code === '' ? {} : { endpointError: code }),
      endpointStatus: status,
    },
  );
}

/** `expires_in` (RFC 6749 §5.1): a non-negative integer; a digit string is accepted (Azure AD v1 sends one). */
function expiresInOf(value: unknown, status: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const seconds = typeof value === 'string' && /^\d{1,10}$/.test(value) ? Number(value) : value;
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
    throw new OAuthTokenError('invalid_response', 'The token response has an invalid expires_in.', {
      endpointStatus: status,
    });
  }
  return Math.floor(seconds);
}

/** A 2xx body → {@link AccessToken}, or `invalid_response` (RFC 6749 §5.1, RFC 6750 §2.1). */
function accessTokenOf(
  status: number,
  json: Record<string, unknown> | undefined,
  secrets: string[],
): AccessToken {
  const invalid = (detail: string): OAuthTokenError =>
    new OAuthTokenError('invalid_response', detail, { endpointStatus: status });
  if (json === undefined) throw invalid('The token response is not a JSON object.');
  const { access_token: accessToken, token_type: tokenType, scope } = json;
  if (typeof accessToken !== 'string' || !B64TOKEN.test(accessToken)) {
    throw invalid('The token response has no usable access_token.');
  }
  if (typeof tokenType !== 'string') throw invalid('The token response has no token_type.');
  // RFC 6749 §5.1: token_type is case-insensitive. DPoP (RFC 9449) and others need proof or
  // signing we do not do; sending such a token as Bearer would be refused or, worse, accepted.
  if (tokenType.toLowerCase() !== 'bearer') {
    throw invalid(
      `The token endpoint issued a "${sanitiseEndpointText(tokenType, 20, [accessToken, ...secrets])}" token; only Bearer tokens are supported.`,
    );
  }
  return {
    accessToken,
    tokenType: 'Bearer',
    expiresInS: expiresInOf(json.expires_in, status),
    scope: typeof scope === 'string' ? scope : undefined,
  };
}

/**
 * Requests an access token with the client-credentials grant (RFC 6749 §4.4.2): `POST tokenUrl` with
 * `grant_type=client_credentials`, `scope` and `audience` when set, and the client authentication of
 * `settings.clientAuthentication` (RFC 6749 §2.3.1, RFC 8705 §2.1), over `options.dispatcher`. Redirects
 * are not followed. At most `maxResponseBytes` of the answer are read, all within `timeoutMs`.
 * @returns the token of a 2xx JSON answer with a Bearer `token_type` (RFC 6749 §5.1, RFC 6750).
 * @throws {@link OAuthTokenError} (AppError `oauth_token_failed`, 502) for every failure; see
 *   {@link OAuthFailureReason}. Its detail carries the endpoint's `error` and a sanitised
 *   `error_description`, never the secret or a token.
 */
export async function requestClientCredentialsToken(
  settings: ClientCredentialsSettings,
  options: TokenRequestOptions,
): Promise<AccessToken> {
  const url = checkedTokenUrl(settings, options.allowPrivate);
  const { body, headers } = tokenRequestOf(settings);
  const secrets =
    settings.clientSecret && settings.clientAuthentication !== 'tls_client_auth'
      ? [settings.clientSecret, formEncode(settings.clientSecret), headers.authorization?.slice(6) ?? '']
      : [];
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_TOKEN_RESPONSE_BYTES;
  const signal = AbortSignal.timeout(options.timeoutMs);
  let status: number;
  let bytes: Buffer;
  try {
    const response = await request(url, {
      dispatcher: options.dispatcher,
      method: 'POST',
      headers,
      body,
      signal,
    });
    status = response.statusCode;
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      response.body.destroy();
      throw new OAuthTokenError('invalid_response', `The token response is larger than ${maxBytes} bytes.`, {
        endpointStatus: status,
      });
    }
    bytes = await readBounded(response.body, maxBytes);
  } catch (err) {
    if (err instanceof OAuthTokenError) throw err;
    if (signal.aborted) {
      throw new OAuthTokenError(
        'timeout',
        `The token endpoint did not answer within ${options.timeoutMs} ms.`,
        {
          cause: err,
        },
      );
    }
    const mapped = mapUpstreamError(err);
    throw new OAuthTokenError('unreachable', `The token request failed: ${mapped.detail}`, {
      upstreamCode: mapped.code,
      cause: err,
    });
  }
  const json = jsonObject(bytes);
  if (status < 200 || status > 299) throw endpointError(status, json, secrets);
  return accessTokenOf(status, json, secrets);
}
