/**
 * A browser as far as Twoway's sessions care: a cookie jar (RFC 6265 `Set-Cookie` as the server
 * sends it, kept raw for the flag checks), redirects not followed, and the CSRF header only when
 * asked. Requests go to `origin` whatever host a URL names, so a link made for a public https URL
 * can be opened on the test listener.
 */
export class Browser {
  /** Cookie name → value. */
  readonly cookies = new Map<string, string>();
  /** Every `Set-Cookie` header received, in order. */
  readonly setCookies: string[] = [];
  readonly #origin: string;

  constructor(origin: string) {
    this.#origin = origin;
  }

  /** Fetches `target` (a path, or a URL whose path is used) with the jar's cookies. */
  async fetch(target: string, init: RequestInit & { json?: unknown; csrf?: string } = {}): Promise<Response> {
    const { json, csrf, ...rest } = init;
    const url = new URL(target, this.#origin);
    const headers = new Headers(rest.headers);
    if (this.cookies.size > 0) {
      headers.set('cookie', [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; '));
    }
    if (csrf !== undefined) headers.set('twoway-csrf', csrf);
    if (json !== undefined) headers.set('content-type', 'application/json');
    const response = await fetch(`${this.#origin}${url.pathname}${url.search}`, {
      ...rest,
      headers,
      redirect: 'manual',
      ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
    });
    for (const line of response.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const at = pair.indexOf('=');
      const name = pair.slice(0, at);
      const value = pair.slice(at + 1);
      const expired = attributes.some(
        (a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) <= Date.now()),
      );
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** `GET /v1/session`'s `csrfToken`. */
  async csrfToken(): Promise<string> {
    const response = await this.fetch('/v1/session');
    if (response.status !== 200) throw new Error(`GET /v1/session answered ${response.status}`);
    return ((await response.json()) as { csrfToken: string }).csrfToken;
  }
}
