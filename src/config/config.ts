import { readFileSync } from 'node:fs';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The one configuration schema. Every key is set by the environment variable of the same name in
 * SCREAMING_SNAKE_CASE with a `TWOWAY_` prefix (`httpPort` ← `TWOWAY_HTTP_PORT`) or by the same
 * variable name in the JSON file named by `TWOWAY_CONFIG_FILE`; the environment wins. Secrets are
 * marked `secret: true` so that they are redacted wherever the config is shown.
 */
export const ConfigSchema = Type.Object({
  host: Type.String({ default: '127.0.0.1', description: 'Bind address of all listeners' }),
  httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  edgePort: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
  dataDir: Type.String({ minLength: 1, default: './data', description: 'SQLite file, local key file' }),
  databaseUrl: Type.Optional(
    Type.String({ pattern: '^postgres(ql)?://', description: 'postgres://... (default: SQLite in dataDir)' }),
  ),
  databaseConnectTimeoutMs: Type.Integer({
    minimum: 100,
    default: 5_000,
    description:
      'PostgreSQL: longest wait for a new session (TCP, TLS, startup) and for a free pooled one; a request that waits longer gets 503 not_ready',
  }),
  databaseStatementTimeoutMs: Type.Integer({
    minimum: 100,
    default: 5_000,
    description:
      'PostgreSQL: longest run of one statement, lock waits included (statement_timeout, migrations too); a session silent 1 s longer is dropped; the request gets 503 not_ready',
  }),
  readyTimeoutMs: Type.Integer({
    minimum: 100,
    default: 2_000,
    description: '/readyz answers 503 not_ready when the store and KMS checks take longer than this',
  }),
  masterKey: Type.Optional(
    Type.String({ secret: true, description: 'base64 32-byte KEK for the local KMS' }),
  ),
  operatorToken: Type.Optional(Type.String({ minLength: 16, secret: true })),
  kms: Type.Union([Type.Literal('local'), Type.Literal('pkcs11')], {
    default: 'local',
    description:
      'Where the KEK lives: local (TWOWAY_MASTER_KEY or the key file in the data folder) or pkcs11 (an AES-256 key inside a PKCS#11 token)',
  }),
  pkcs11Module: Type.Optional(
    Type.String({ minLength: 1, description: 'Path of the PKCS#11 library (TWOWAY_KMS=pkcs11)' }),
  ),
  pkcs11TokenLabel: Type.Optional(
    Type.String({ minLength: 1, description: 'Label of the token that holds the KEK' }),
  ),
  pkcs11Pin: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'User PIN of the token' })),
  pkcs11PinFile: Type.Optional(
    Type.String({ minLength: 1, description: 'File holding the user PIN (one trailing newline dropped)' }),
  ),
  pkcs11KeyLabel: Type.String({
    minLength: 1,
    default: 'twoway-kek',
    description:
      'Label of the AES-256 KEK in the token; generated there (non-extractable) on first start when missing. A new label is a new KEK version (see twoway kms rotate)',
  }),
  metricsToken: Type.Optional(
    Type.String({
      minLength: 16,
      secret: true,
      description: 'Bearer token for GET /metrics (the operator token works too)',
    }),
  ),
  metricsListen: Type.Optional(
    Type.String({
      pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]/]+):[0-9]{1,5}$',
      description:
        'host:port of a separate plain-HTTP listener that serves only GET /metrics (e.g. 127.0.0.1:9464); it asks for TWOWAY_METRICS_TOKEN when that is set',
    }),
  ),
  forwardAllowPrivate: Type.Boolean({
    default: false,
    description: 'WEAKENS SECURITY: allow forwarding to loopback/private/link-local addresses',
  }),
  forwardConnectTimeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
  forwardHeadersTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
  forwardBodyTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
  forwardKeepAliveTimeoutMs: Type.Integer({ minimum: 1, default: 30_000 }),
  forwardIdleAgentTtlMs: Type.Integer({ minimum: 1_000, default: 300_000 }),
  httpIdleTimeoutMs: Type.Integer({
    minimum: 1_000,
    default: 120_000,
    description:
      'A connection to the HTTP listener on which nothing was read or written for this long is closed (a client that stops sending its body or stops reading the answer); must exceed the forward headers and body timeouts',
  }),
  maxUploadBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
  changePollIntervalMs: Type.Integer({ minimum: 50, default: 1_000 }),
  edgeUpstream: Type.Optional(Type.String({ pattern: '^https?://' })),
  edgeHostNames: Type.String({
    minLength: 1,
    default: 'localhost,127.0.0.1,::1',
    description: 'DNS names and IP addresses (comma-separated) of the default edge server certificate',
  }),
  edgeSessionTickets: Type.Boolean({
    default: false,
    description:
      'Send TLS session tickets on the edge (resumption). Off by default: the ticket key never rotates, and each ticket costs the server an encode-decode-encode of the session (client certificate included)',
  }),
  edgeHelloPath: Type.String({
    pattern: '^/[^?#{}]*\\{tenant\\}[^?#{}]*$',
    default: '/v1/tenants/{tenant}/mtls/hello',
    description:
      'Path template of the edge hello check ({tenant} once): it answers "Hello, world!" to a registered, valid certificate of that tenant alone, no API key needed (e.g. /v4/orgs/{tenant}/mtls/hello)',
  }),
  edgeDefaultEnabled: Type.Boolean({
    default: true,
    description:
      'Inbound mTLS for a tenant the operator has not switched (PATCH /v1/tenants/{tenant} { edgeEnabled }); refused with 403 edge_not_enabled when off',
  }),
  csrApproval: Type.Union([Type.Literal('automatic'), Type.Literal('manual')], {
    default: 'automatic',
    description:
      'manual: a CSR answers 202 status pending and waits for the operator to approve or reject it',
  }),
  edgeCertFile: Type.Optional(
    Type.String({ minLength: 1, description: 'PEM server certificate (+ chain) of the edge listener' }),
  ),
  edgeKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of edgeCertFile' })),
  publicUrl: Type.Optional(
    Type.String({
      description:
        'Base URL at which relying parties reach this HTTP API (e.g. http://twoway.example.com); when set, certificates the platform CA issues name <publicUrl>/v1/ca/crl as their CRL distribution point',
    }),
  ),
  caKeyAlgorithm: Type.Union(
    ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'].map((a) => Type.Literal(a)),
    { default: 'ecdsa-p256', description: 'Key algorithm of a new platform CA (root and issuing)' },
  ),
  clientCertKeyTypes: Type.String({
    pattern:
      '^(rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384|ec-p521|ed25519)(,(rsa-2048|rsa-3072|rsa-4096|ec-p256|ec-p384|ec-p521|ed25519))*$',
    default: 'rsa-2048,rsa-3072,rsa-4096,ec-p256,ec-p384,ed25519',
    description: 'Key types a client certificate (upload or CSR) may use',
  }),
  clientCertMaxValidityDays: Type.Integer({ minimum: 1, maximum: 3650, default: 398 }),
  clientCertIssueValidityDays: Type.Integer({ minimum: 1, maximum: 3650, default: 365 }),
  smtpUrl: Type.Optional(
    Type.String({
      pattern: '^smtps?://',
      secret: true,
      description: 'smtp:// or smtps:// (credentials in the URL)',
    }),
  ),
  smtpFrom: Type.String({
    minLength: 3,
    default: 'Twoway <twoway@localhost>',
    description: 'From of notification e-mails',
  }),
  lifecycleScanIntervalMs: Type.Integer({
    minimum: 1_000,
    default: 3_600_000,
    description: 'expiry scan interval',
  }),
  notificationRetryBaseMs: Type.Integer({
    minimum: 1,
    default: 30_000,
    description: 'first retry delay; doubles',
  }),
  notificationRetryMaxMs: Type.Integer({
    minimum: 1,
    default: 3_600_000,
    description: 'longest retry delay',
  }),
  notificationMaxAttempts: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  notificationTimeoutMs: Type.Integer({
    minimum: 1,
    default: 10_000,
    description: 'one SMTP or webhook attempt',
  }),
  identityTestTimeoutMs: Type.Integer({
    minimum: 100,
    default: 10_000,
    description: 'whole certificate test',
  }),
  identityPassword: Type.Optional(
    Type.String({
      secret: true,
      description:
        'CLI only: the PKCS#12 / key password of `identity import` and `identity test` when neither --password-file nor --password-stdin is given',
    }),
  ),
  uiFrameAncestors: Type.String({
    minLength: 1,
    default: "'none'",
    description:
      "CSP frame-ancestors of the web UI at /ui/: the origins that may embed the portal in an iframe (space-separated, e.g. https://platform.example), default 'none'",
  }),
  quotaIdentities: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Most identities (not deleted) per tenant',
  }),
  quotaVersionsPerIdentity: Type.Integer({
    minimum: 1,
    default: 100,
    description: 'Most versions of one identity (versions are kept for the record)',
  }),
  quotaMappings: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Most mappings (not deleted) per tenant',
  }),
  quotaConnections: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Most connections per tenant',
  }),
  quotaClientCertificates: Type.Integer({
    minimum: 1,
    default: 10_000,
    description: 'Most client certificates (not deleted, revoked ones included) per tenant',
  }),
  quotaIssuedPerDay: Type.Integer({
    minimum: 1,
    default: 1000,
    description: 'Most certificates the platform CA issues to one tenant in any 24 hours',
  }),
  quotaNotificationTargets: Type.Integer({
    minimum: 1,
    default: 20,
    description: 'Most e-mail addresses plus webhook URLs in one tenant’s notification settings',
  }),
  sessionIdleTimeoutMs: Type.Integer({
    minimum: 60_000,
    default: 1_800_000,
    description: 'A browser session (portal or console) unused this long ends (default 30 minutes)',
  }),
  sessionLifetimeMs: Type.Integer({
    minimum: 60_000,
    default: 43_200_000,
    description: 'A browser session ends this long after sign-in whatever its use (default 12 hours)',
  }),
  sessionSignInMaxPerMinute: Type.Integer({
    minimum: 1,
    maximum: 10_000,
    default: 10,
    description: 'Operator console sign-ins (POST /v1/session) allowed per minute and client address',
  }),
  workers: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 1,
    description: 'Processes serving the listeners (node:cluster); changes are relayed between them',
  }),
  workerIndex: Type.Integer({ minimum: 0, default: 0, description: 'Set by the primary for each worker' }),
  logLevel: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
    { default: 'info' },
  ),
});

/** The validated, frozen configuration. */
export type Config = Readonly<Static<typeof ConfigSchema>>;

/** Thrown by {@link loadConfig} with every problem found, one per line. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const envName = (key: string): string => `TWOWAY_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** Names of the keys whose values must never be shown. */
export const secretKeys: ReadonlySet<string> = new Set(
  Object.entries(ConfigSchema.properties)
    .filter(([, s]) => (s as { secret?: boolean }).secret)
    .map(([k]) => k),
);

function convert(key: string, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  const schema = ConfigSchema.properties[key as keyof typeof ConfigSchema.properties] as { type?: string };
  if (schema.type === 'integer') return /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (schema.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  return raw;
}

/** What an environment variable name looks like (`TWOWAY_HTTP_PORT`). */
const SETTING_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * `value` with whatever precedes the last `@` of a URL's authority replaced by `***`
 * (`postgres://app:s3cret@db/twoway` → `postgres://***@db/twoway`), for showing a setting that may
 * carry credentials (RFC 3986 §3.2.1 userinfo). The last `@` of the whole value counts, so an
 * unescaped `/`, `#` or `@` in a password cannot leave part of it shown; a value without `@` is
 * returned unchanged.
 */
export function redactUrlCredentials(value: string): string {
  const at = value.lastIndexOf('@');
  if (at < 0) return value;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(value);
  const start = scheme === null ? 0 : scheme[0].length;
  return at < start ? value : `${value.slice(0, start)}***${value.slice(at)}`;
}

/**
 * The JSON object in the config file at `path`, or the problem with it. The problem never quotes
 * the file: it holds secrets (the operator token, the master key), and JSON.parse's message shows
 * the text around the error.
 */
function readConfigFile(path: string): Record<string, unknown> | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return `cannot be read${typeof code === 'string' ? ` (${code})` : ''}`;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // Node 20 says "... at position 42 (line 3 column 7)" or only "at position 42"; keep that much.
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    if (position === undefined) return 'is not valid JSON';
    const before = text.slice(0, Number(position)).split('\n');
    return `is not valid JSON (line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1})`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return 'must hold a JSON object';
  }
  return parsed as Record<string, unknown>;
}

/**
 * Reads the configuration from `env` (default `process.env`) and the optional JSON file named by
 * `TWOWAY_CONFIG_FILE`, applies defaults, converts strings to numbers and booleans, and validates
 * everything at once. `overrides` (the CLI's `--data-dir` / `--database-url`) win over both.
 * @throws ConfigError listing every problem: secret values are never echoed, URL values only with
 *   their credentials redacted ({@link redactUrlCredentials}), the config file's text never.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<'dataDir' | 'databaseUrl', string>> = {},
): Config {
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  const filePath = env.TWOWAY_CONFIG_FILE;
  if (filePath) {
    const read = readConfigFile(filePath);
    if (typeof read === 'string') problems.push(`TWOWAY_CONFIG_FILE ${filePath}: ${read}`);
    else file = read;
  }
  const known = new Set(Object.keys(ConfigSchema.properties).map(envName));
  for (const name of Object.keys(file)) {
    if (known.has(name)) continue;
    // A name that is not even shaped like a setting may be a value pasted in the wrong place.
    const shown = SETTING_NAME.test(name) ? name : 'a key that is not a setting name';
    problems.push(`${shown} (config file): unknown setting`);
  }
  const values: Record<string, unknown> = {};
  for (const key of Object.keys(ConfigSchema.properties)) {
    const name = envName(key);
    const raw = env[name] !== undefined && env[name] !== '' ? env[name] : file[name];
    if (raw !== undefined) values[key] = convert(key, raw);
  }
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) values[key] = value;
  const withDefaults = Value.Default(ConfigSchema, values) as Record<string, unknown>;
  for (const error of Value.Errors(ConfigSchema, withDefaults)) {
    const key = error.path.replace(/^\//, '');
    const shown = secretKeys.has(key)
      ? ''
      : ` (got ${typeof error.value === 'string' ? JSON.stringify(redactUrlCredentials(error.value)) : JSON.stringify(error.value)})`;
    problems.push(`${envName(key)}: ${error.message}${shown}`);
  }
  if (typeof withDefaults.masterKey === 'string') {
    const bytes = Buffer.from(withDefaults.masterKey, 'base64');
    if (bytes.length !== 32) problems.push('TWOWAY_MASTER_KEY: must be 32 bytes, base64-encoded');
  }
  checkPkcs11(withDefaults, problems);
  if ((withDefaults.edgeCertFile === undefined) !== (withDefaults.edgeKeyFile === undefined)) {
    problems.push('TWOWAY_EDGE_CERT_FILE and TWOWAY_EDGE_KEY_FILE: set both or neither');
  }
  if (Number(withDefaults.clientCertIssueValidityDays) > Number(withDefaults.clientCertMaxValidityDays)) {
    problems.push(
      'TWOWAY_CLIENT_CERT_ISSUE_VALIDITY_DAYS: must not exceed TWOWAY_CLIENT_CERT_MAX_VALIDITY_DAYS',
    );
  }
  const forwardWaitMs = Math.max(
    Number(withDefaults.forwardHeadersTimeoutMs),
    Number(withDefaults.forwardBodyTimeoutMs),
  );
  if (Number(withDefaults.httpIdleTimeoutMs) <= forwardWaitMs) {
    problems.push(
      'TWOWAY_HTTP_IDLE_TIMEOUT_MS: must exceed TWOWAY_FORWARD_HEADERS_TIMEOUT_MS and TWOWAY_FORWARD_BODY_TIMEOUT_MS (a forward waiting for the remote server is idle on the client side)',
    );
  }
  if (typeof withDefaults.edgeUpstream === 'string' && !URL.canParse(withDefaults.edgeUpstream)) {
    problems.push(
      `TWOWAY_EDGE_UPSTREAM: must be an http(s) URL (got ${JSON.stringify(redactUrlCredentials(withDefaults.edgeUpstream))})`,
    );
  }
  if (
    typeof withDefaults.metricsListen === 'string' &&
    listenAddress(withDefaults.metricsListen).port > 65535
  ) {
    problems.push('TWOWAY_METRICS_LISTEN: the port must be at most 65535');
  }
  if (typeof withDefaults.publicUrl === 'string') {
    // Checked by hand, not by a schema pattern, so that the value (credentials?) is never echoed.
    const url = URL.canParse(withDefaults.publicUrl) ? new URL(withDefaults.publicUrl) : undefined;
    if (
      url === undefined ||
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      url.username !== '' ||
      url.password !== '' ||
      url.search !== '' ||
      url.hash !== ''
    ) {
      problems.push('TWOWAY_PUBLIC_URL: must be an http(s) URL without credentials, query or fragment');
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(withDefaults as Static<typeof ConfigSchema>);
}

/**
 * `host:port` (`127.0.0.1:9464`, `[::1]:9464`) as the host (brackets removed) and the port number,
 * as `TWOWAY_METRICS_LISTEN` is written (the schema checks the shape).
 */
export function listenAddress(value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':');
  return { host: value.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port: Number(value.slice(colon + 1)) };
}

/** The config with secrets replaced by `[redacted]`, for showing it (nothing in src/ does yet). */
export function redactedConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [k, secretKeys.has(k) && v !== undefined ? '[redacted]' : v]),
  );
}

/**
 * TWOWAY_KMS=pkcs11 needs the module, the token label and one PIN source; a PIN file is read here,
 * so that the PIN reaches the KMS as `pkcs11Pin` (a secret) whichever way it was given.
 */
function checkPkcs11(values: Record<string, unknown>, problems: string[]): void {
  if (values.kms !== 'pkcs11') return;
  if (values.pkcs11Module === undefined)
    problems.push('TWOWAY_PKCS11_MODULE: required with TWOWAY_KMS=pkcs11');
  if (values.pkcs11TokenLabel === undefined)
    problems.push('TWOWAY_PKCS11_TOKEN_LABEL: required with TWOWAY_KMS=pkcs11');
  const pinFile = values.pkcs11PinFile;
  if (values.pkcs11Pin !== undefined && pinFile !== undefined) {
    problems.push('TWOWAY_PKCS11_PIN and TWOWAY_PKCS11_PIN_FILE: set one, not both');
  } else if (typeof pinFile === 'string') {
    try {
      values.pkcs11Pin = readFileSync(pinFile, 'utf8').replace(/\r?\n$/, '');
      if (values.pkcs11Pin === '') problems.push(`TWOWAY_PKCS11_PIN_FILE ${pinFile}: is empty`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        `TWOWAY_PKCS11_PIN_FILE ${pinFile}: cannot be read${typeof code === 'string' ? ` (${code})` : ''}`,
      );
    }
  } else if (values.pkcs11Pin === undefined) {
    problems.push('TWOWAY_PKCS11_PIN or TWOWAY_PKCS11_PIN_FILE: required with TWOWAY_KMS=pkcs11');
  }
}
