/**
 * Routes named in Markdown API documentation (the team's API.md, the README), as `METHOD /path`
 * strings with every path parameter written `{}` so that `{id}` and `{memberId}` compare equal.
 *
 * A route is a code span that starts with a method: `POST /v1/tenants`, `GET .../identities/{id}`,
 * `GET`/`DELETE .../roles/{role}`, or (with `bareMethods`) a lone `GET` after a collection. `...`
 * abbreviates the path of the route named just before it in the same section (see {@link resolve}).
 */

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY'] as const;
const SPAN = new RegExp(`^((?:${METHODS.join('|')})(?:/(?:${METHODS.join('|')}))*)(?: (\\S+))?$`);

export interface DocumentedRoute {
  /** Upper case; `ANY` stands for every method. */
  method: string;
  /** Path with parameters as `{}`. */
  path: string;
  /** The `#` heading the route is under (`Twoway HTTP API v1: the contract`, `Additions ...`). */
  part: string;
  /** The `##` heading the route is under. */
  section: string;
}

const isParam = (segment: string | undefined): boolean => segment?.startsWith('{') === true;

/**
 * Expands `.../suffix` against `base`, the route named before it: from where the suffix's first
 * segment last occurs in `base` (`.../identities/{id}` after `/v1/tenants/{tenant}/identities`);
 * appended when it starts with a parameter (`.../{id}` after a collection); otherwise a sibling of
 * `base`'s last segment (`.../client-certificates` after `.../{tenant}/certificate-signing-requests`),
 * or, when that last segment is a parameter, under the first parameter (`.../api-keys` after
 * `/v1/tenants/{tenant}/members/{memberId}`).
 */
export function resolve(suffix: string, base: string): string {
  const segments = suffix.split('/').filter(Boolean);
  const baseSegments = base.split('/').filter(Boolean);
  const first = segments[0];
  const at = first === undefined ? -1 : baseSegments.lastIndexOf(first);
  let head: string[];
  if (at >= 0) head = baseSegments.slice(0, at);
  else if (isParam(first)) head = baseSegments;
  else if (!isParam(baseSegments.at(-1))) head = baseSegments.slice(0, -1);
  else head = baseSegments.slice(0, baseSegments.findIndex(isParam) + 1);
  return `/${[...head, ...segments].join('/')}`;
}

/** The collection a lone method refers to: `base` less its trailing parameters. */
function collectionOf(base: string): string {
  const segments = base.split('/').filter(Boolean);
  while (isParam(segments.at(-1))) segments.pop();
  return `/${segments.join('/')}`;
}

/** Every route the Markdown names, in order, with the headings it is under. */
export function documentedRoutes(
  markdown: string,
  options: { bareMethods?: boolean } = {},
): DocumentedRoute[] {
  const routes: DocumentedRoute[] = [];
  let part = '';
  let section = '';
  // Code spans may wrap lines, so a section is scanned whole; fenced blocks hold stray backticks.
  const scan = (body: string) => {
    let base: string | undefined;
    // `GET`/`DELETE .../x` names both methods on one path: join the two spans first.
    const joined = body.replace(new RegExp(`\`(${METHODS.join('|')})\`/\``, 'g'), '`$1/');
    for (const span of joined.matchAll(/`([^`]+)`/g)) {
      const match = SPAN.exec((span[1] ?? '').replace(/\s+/g, ' '));
      if (!match) continue;
      const [, methods = '', target] = match;
      let path: string | undefined;
      if (target === undefined) {
        if (options.bareMethods && base !== undefined) path = collectionOf(base);
      } else if (target.startsWith('/')) path = target;
      else if (target.startsWith('.../') && base !== undefined) path = resolve(target.slice(3), base);
      if (path === undefined) continue;
      base = path;
      for (const method of methods.split('/')) {
        routes.push({ method, path: path.replace(/\{[^}]*\}/g, '{}'), part, section });
      }
    }
  };
  let body: string[] = [];
  for (const line of markdown.replace(/^```[\s\S]*?^```/gm, '').split('\n')) {
    const heading = /^(#{1,2}) (.*)$/.exec(line);
    if (!heading) {
      body.push(line);
      continue;
    }
    scan(body.join('\n'));
    body = [];
    if (heading[1] === '#') part = heading[2] ?? '';
    section = heading[2] ?? '';
  }
  scan(body.join('\n'));
  return routes;
}
