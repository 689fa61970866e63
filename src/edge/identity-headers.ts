/**
 * The verified client identity as request headers for the platform upstream. The edge removes every
 * client-sent copy of these (and of `Client-Cert-Chain`) before setting its own, so a client cannot
 * forge them (FIELD-NOTES "Identity headers"); spellings with `_` for `-` (`X_Forwarded_Client_Cert`)
 * too, as a CGI-style platform reads both as one (forward/proxy.ts, CVE-2024-45614).
 *
 * - `Twoway-Tenant: <tenant id>`: the tenant the certificate (and the API key) belong to.
 * - `X-Forwarded-Client-Cert`: Envoy's format, one element:
 *   `Hash=<SHA-256 of the DER, lowercase hex>;Subject="<RFC 4514 subject>";URI=<SAN URI>;DNS=<SAN DNS>`
 *   (one `URI=`/`DNS=` pair per name). In `URI=`/`DNS=` values, `%`, control and non-ASCII bytes are
 *   percent-encoded (`%25` for `%`), so percent-decoding gives back the exact name. Values holding
 *   `,` `;` `=` are double-quoted with `"` written `\"`, as Envoy does. The Subject never holds a raw `"` or `\\`: those are written as RFC 4514
 *   hex escapes (`\22`, `\5C`), as is every byte outside printable ASCII, so the header is plain ASCII
 *   and unambiguous.
 * - `Client-Cert: :<base64 DER>:` (RFC 9440 §2.2: the certificate as an RFC 8941 Byte Sequence).
 * - `Client-Cert-Chain: :<base64 DER>:, ...` (RFC 9440 §2.3: the certificates that validate it,
 *   issuing CA first, the trust anchor left out as §2.3 allows), only when there is such a chain:
 *   for a certificate the platform CA issued. A BYOC certificate is pinned by its fingerprint, not
 *   validated through a chain, so it gets none.
 */

/** Lowercase names of the identity headers, dropped from the client's request. */
export const IDENTITY_HEADER_NAMES: ReadonlySet<string> = new Set([
  'twoway-tenant',
  'x-forwarded-client-cert',
  'client-cert',
  'client-cert-chain',
]);

/** What the headers say about a verified client certificate. */
export interface VerifiedIdentity {
  tenantId: string;
  fingerprintSha256: string;
  der: Buffer;
  /** RFC 4514, most specific first, as certificates/ formats it. */
  subject: string;
  /** `URI:…`, `DNS:…`, `IP:…` as certificates/ formats them. */
  subjectAltNames: readonly string[];
  /** DER certificates that validate `der`, issuing CA first; empty or absent for a pinned BYOC one. */
  chain?: readonly Buffer[];
}

/** RFC 4514 hexpair escapes for `"`, `\\` and every byte outside printable ASCII (UTF-8). */
function asciiSubject(subject: string): string {
  // formatName escapes `"` and `\` with a backslash (RFC 4514 §2.4); rewrite those as hexpairs.
  const unquoted = subject.replace(/\\(["\\])/g, (_m, c: string) => (c === '"' ? '\\22' : '\\5C'));
  let out = '';
  for (const char of unquoted) {
    const code = char.codePointAt(0) ?? 0;
    if (code >= 0x20 && code < 0x7f && char !== '"') {
      out += char;
    } else {
      for (const byte of Buffer.from(char, 'utf8'))
        out += `\\${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/**
 * An XFCC value: `%`, control and non-ASCII bytes percent-encoded (RFC 3986 §2.1), so that decoding
 * is exact: a literal `%3A` in a name arrives as `%253A` and cannot decode to `:`; quoted when it
 * holds `,;="\`, with `"` and `\` escaped as quoted-pairs (RFC 9110 §5.6.4), so a name cannot
 * close the quotes early and smuggle another element in.
 */
function xfccValue(value: string): string {
  let clean = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    clean +=
      byte > 0x20 && byte < 0x7f && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return /[,;="\\]/.test(clean) ? `"${clean.replace(/["\\]/g, '\\$&')}"` : clean;
}

/** The `X-Forwarded-Client-Cert` value for one verified certificate (see the module comment). */
export function xfcc(identity: VerifiedIdentity): string {
  let value = `Hash=${identity.fingerprintSha256};Subject="${asciiSubject(identity.subject)}"`;
  for (const name of identity.subjectAltNames) {
    if (name.startsWith('URI:')) value += `;URI=${xfccValue(name.slice(4))}`;
  }
  for (const name of identity.subjectAltNames) {
    if (name.startsWith('DNS:')) value += `;DNS=${xfccValue(name.slice(4))}`;
  }
  return value;
}

/** `:<base64>:`, an RFC 8941 §3.3.5 Byte Sequence, as RFC 9440 §2.2 carries the certificate. */
export function clientCertHeader(der: Buffer): string {
  return `:${der.toString('base64')}:`;
}

/** The identity headers as a flat `[name, value, ...]` list for the upstream request. */
export function identityHeaders(identity: VerifiedIdentity): string[] {
  return [
    'Twoway-Tenant',
    identity.tenantId,
    'X-Forwarded-Client-Cert',
    xfcc(identity),
    'Client-Cert',
    clientCertHeader(identity.der),
    ...(identity.chain !== undefined && identity.chain.length > 0
      ? ['Client-Cert-Chain', identity.chain.map(clientCertHeader).join(', ')]
      : []),
  ];
}
