/**
 * URL path checks shared by the forward's prefix mappings and the edge's base path.
 *
 * The WHATWG URL parser (what `new URL()` does) resolves `.` and `..` segments, `%2e` spellings of
 * them and, for http(s), `\` as `/` (RFC 3986 §5.2.4). It leaves `%2F`, `%5C` and `;parameters`
 * alone, and many servers do not: Tomcat and Spring strip `;…` from each segment (`..;/admin`), some
 * servers and frameworks decode `%2F` before routing (`..%2Fadmin`). A path that stays under a
 * prefix only for the parser, not for such a server, must not count as under it.
 */

/**
 * The path as a server that decodes `%2F`, `%5C` and `%2E` and drops `;parameters` before routing
 * would resolve it: segments split on `/` and `\`, dot segments applied, never above the root.
 */
export function leniently(path: string): string {
  const decoded = path
    .replace(/%2f|%5c/gi, '/')
    .replace(/%2e/gi, '.')
    .replace(/\\/g, '/');
  const out: string[] = [];
  for (const raw of decoded.split('/')) {
    const semicolon = raw.indexOf(';');
    const segment = semicolon < 0 ? raw : raw.slice(0, semicolon);
    if (segment === '..') {
      if (out.length > 1) out.pop();
    } else if (segment !== '.') {
      out.push(segment);
    }
  }
  return out.join('/');
}

/** True when `path` is `prefix` or below it on a `/` boundary; `prefix` has no trailing slash. */
function within(prefix: string, path: string): boolean {
  return path === prefix || (path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47); /* / */
}

/**
 * True when the (parsed) `path` is under `prefix` (no trailing slash; `''` is the root, which
 * covers everything) both as written and as {@link leniently} resolves it.
 */
export function pathWithin(prefix: string, path: string): boolean {
  if (prefix === '') return true;
  return within(prefix, path) && within(leniently(prefix), leniently(path));
}
