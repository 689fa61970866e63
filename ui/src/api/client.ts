import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

/** Schemas of Twoway's OpenAPI document (generated: npm run ui:api-types). */
export type Schemas = components['schemas'];
export type Identity = Schemas['Identity'];
export type IdentityVersion = Identity['versions'][number];

/** RFC 9457 problem as the API answers it. */
export interface Problem {
  code?: string;
  title?: string;
  detail?: string;
  status?: number;
}

let csrfToken: string | undefined;

/** The session's CSRF token, sent as `Twoway-CSRF` on every unsafe request (API.md, People). */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

let onSessionEnded: () => void = () => undefined;

/** Called when the API answers 401 to a signed-in page: the session expired or was ended elsewhere. */
export function whenSessionEnds(handler: () => void): void {
  onSessionEnded = handler;
}

const csrf: Middleware = {
  onRequest({ request }) {
    if (csrfToken !== undefined && !['GET', 'HEAD', 'OPTIONS'].includes(request.method)) {
      request.headers.set('twoway-csrf', csrfToken);
    }
    return request;
  },
  onResponse({ request, response }) {
    if (
      response.status === 401 &&
      csrfToken !== undefined &&
      !new URL(request.url).pathname.startsWith('/v1/session')
    ) {
      onSessionEnded();
    }
    return response;
  },
};

/** The typed client of the public /v1 API: same origin, the session cookie, never a token in script. */
export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin' });
api.use(csrf);

/** A FormData body passed through unchanged (openapi-fetch would JSON-encode it). */
export const formBody = { bodySerializer: (body: unknown) => body as FormData };

/** The problem's words for a person: its detail, else its title, else the status. */
export function problemText(error: unknown): string {
  const p = (error ?? {}) as Problem;
  return p.detail ?? p.title ?? 'The request failed.';
}

/** Calls the API outside the typed paths (routes newer than the generated schema), same conventions. */
export async function call<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ data?: T; error?: Problem }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (csrfToken !== undefined && method !== 'GET') headers['twoway-csrf'] = csrfToken;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (response.status === 401 && csrfToken !== undefined) onSessionEnded();
  const text = await response.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  return response.ok ? { data: json as T } : { error: { status: response.status, ...(json as Problem) } };
}
