import { AppError } from '../errors/app-error.js';
import type { Principal, TenantService } from './service.js';

/** An API credential read from an `Authorization` value. */
export interface ApiCredential {
  /** The secret: the operator token or an API key (`tw_...`). */
  token: string;
  /** With `Basic`: the API key's public id (client id), which must be the key's own. */
  keyId?: string;
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const BASIC = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i;

/**
 * The credential of an `Authorization` value: `Bearer <secret>` (RFC 6750 §2.1) or
 * `Basic base64(<key id>:<secret>)` (RFC 7617 §2: the user-id is the API key's public id, the
 * password its secret; "Client ID and Access Key" as some platforms' customers expect it).
 * Undefined for a missing or malformed value (the caller answers `unauthorized`).
 */
export function credentialOf(header: string | undefined): ApiCredential | undefined {
  if (header === undefined) return undefined;
  const bearer = BEARER.exec(header);
  if (bearer !== null) return { token: bearer[1] as string };
  const basic = BASIC.exec(header);
  if (basic === null) return undefined;
  const pair = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon < 1 || colon === pair.length - 1) return undefined;
  return { keyId: pair.slice(0, colon), token: pair.slice(colon + 1) };
}

/** The API key id a tenant principal was authenticated with (actor `api-key:<id>`), or undefined. */
function keyIdOf(principal: Principal): string | undefined {
  if (principal.kind !== 'tenant' || !principal.actor.startsWith('api-key:')) return undefined;
  return principal.actor.slice('api-key:'.length);
}

/**
 * Authenticates an `Authorization` value ({@link credentialOf}). With `Basic`, the id must be the
 * public id of the very key whose secret is given (the operator token has no id and is refused in
 * `Basic`), so a leaked id alone is worth nothing and an id cannot be paired with another secret.
 * @throws AppError `unauthorized`
 */
export async function authenticateHeader(
  tenants: Pick<TenantService, 'authenticate'>,
  header: string | undefined,
): Promise<Principal> {
  const credential = credentialOf(header);
  const principal = await tenants.authenticate(credential?.token);
  if (credential?.keyId !== undefined && keyIdOf(principal) !== credential.keyId) {
    throw new AppError('unauthorized', 'The token is not valid.');
  }
  return principal;
}
