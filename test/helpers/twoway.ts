import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, onTestFinished } from 'vitest';
import { type Config, loadConfig } from '../../src/config/config.js';
import { startTwoway, type Twoway } from '../../src/main.js';
import type { Clock } from '../../src/shared/clock.js';
import { REDACT_PATHS } from '../../src/shared/logger.js';
import { tempDir } from '../fixtures/pki.js';
import type { AppBackend } from './backends.js';

export const OPERATOR_TOKEN = 'test-operator-token-0123456789';

/** Every log line written by Twoways started in this test process, for leak checks. */
export const logLines: string[] = [];

/** A running Twoway plus helpers to call it. */
export interface TestTwoway extends Twoway {
  config: Config;
  /** fetch against the HTTP listener with the operator token unless `token` is given. */
  call(path: string, init?: RequestInit & { token?: string | null; json?: unknown }): Promise<Response>;
  /** Every response body this instance returned to `call`, for leak checks. */
  bodies: string[];
}

/**
 * Starts Twoway on 127.0.0.1:0 with a fresh data folder (SQLite) or the given database URL, the
 * test operator token and TWOWAY_FORWARD_ALLOW_PRIVATE=true (tests talk to loopback peers).
 */
export async function startTestTwoway(
  env: Record<string, string> = {},
  options: { clock?: Clock } = {},
): Promise<TestTwoway & { dataDir: string }> {
  const { dir, cleanup } = tempDir('twoway-data-');
  const config = loadConfig({
    TWOWAY_HTTP_PORT: '0',
    TWOWAY_EDGE_PORT: '0',
    TWOWAY_DATA_DIR: dir,
    TWOWAY_OPERATOR_TOKEN: OPERATOR_TOKEN,
    TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
    TWOWAY_LOG_LEVEL: 'debug',
    ...env,
  });
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logLines.push(line);
      done();
    },
  });
  const logger = pino({ level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, sink);
  const twoway = await startTwoway(config, { logger, ...(options.clock ? { clock: options.clock } : {}) });
  const bodies: string[] = [];
  let closing: Promise<void> | undefined;
  return {
    ...twoway,
    config,
    dataDir: dir,
    bodies,
    async call(path, init = {}) {
      const { token, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token !== null) headers.set('authorization', `Bearer ${token ?? OPERATOR_TOKEN}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      const response = await fetch(`${twoway.url}${path}`, {
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
      const text = await response.text();
      bodies.push(text);
      const empty = response.status === 204 || response.status === 304;
      return new Response(empty ? null : text, { status: response.status, headers: response.headers });
    },
    async close() {
      // Once: build()'s teardown may follow a test's own close().
      closing ??= twoway.close().then(cleanup);
      await closing;
    },
  };
}

/** What {@link build} and {@link buildInTest} start. */
export interface BuildOptions {
  /** The database: its `env()` (a fresh PostgreSQL schema, or `{}` for SQLite) under `env`. */
  backend?: AppBackend;
  /**
   * TWOWAY_* settings over the test defaults. A function is called (and awaited) when the Twoway
   * starts, after the hooks registered before build(): for values made then (ports, upstream URLs).
   */
  env?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  clock?: Clock;
}

export type BuiltTwoway = TestTwoway & { dataDir: string };

async function startBuilt(options: BuildOptions): Promise<BuiltTwoway> {
  const env = typeof options.env === 'function' ? await options.env() : (options.env ?? {});
  const database = options.backend ? await options.backend.env() : {};
  return startTestTwoway({ ...database, ...env }, options.clock ? { clock: options.clock } : {});
}

/**
 * The Twoway of the enclosing describe block (or file). Call it in the describe body, not in a
 * hook: it registers a beforeAll that starts the Twoway and an afterAll that closes it, and
 * returns a stand-in for it, usable from the hooks registered after it and from the tests. Hooks
 * run in registration order and afterAll hooks in reverse (vitest `sequence.hooks: 'stack'`), so
 * hooks registered after build() see it started, and their afterAll runs while it is still up.
 */
export function build(options: BuildOptions = {}): BuiltTwoway {
  let started: BuiltTwoway | undefined;
  beforeAll(async () => {
    started = await startBuilt(options);
  });
  afterAll(async () => {
    await started?.close();
  });
  return new Proxy({} as BuiltTwoway, {
    get(_, key) {
      // Not a thenable: `await twoway` must not look for `then` on a Twoway not started yet.
      if (key === 'then') return undefined;
      if (started === undefined) {
        throw new Error(`build(): the Twoway is not started yet (read .${String(key)} in a hook or test)`);
      }
      const value: unknown = Reflect.get(started, key);
      return typeof value === 'function' ? value.bind(started) : value;
    },
  });
}

/** A Twoway for one test: call it inside the test; it is closed when the test finishes, pass or fail. */
export async function buildInTest(options: BuildOptions = {}): Promise<BuiltTwoway> {
  const twoway = await startBuilt(options);
  onTestFinished(() => twoway.close());
  return twoway;
}

/**
 * Creates tenant `id` through the operator API (`POST /v1/tenants`) and returns its first API key
 * (`tw_...`, shown once).
 */
export async function createTenant(
  twoway: Pick<TestTwoway, 'call'>,
  id: string,
  name: string = id,
): Promise<string> {
  const created = await twoway.call('/v1/tenants', { method: 'POST', json: { id, name } });
  expect(created.status).toBe(201);
  return ((await created.json()) as { apiKey: string }).apiKey;
}

/** Uploads a PKCS#12 as multipart/form-data, as a browser or `curl -F` would. */
export async function uploadPkcs12(
  twoway: TestTwoway,
  tenant: string,
  p12: Buffer,
  password: string,
  token?: string,
): Promise<Response> {
  const form = new FormData();
  form.set('name', 'client');
  form.set('password', password);
  form.set('file', new Blob([new Uint8Array(p12)], { type: 'application/x-pkcs12' }), 'client.p12');
  return twoway.call(`/v1/tenants/${tenant}/identities`, {
    method: 'POST',
    body: form,
    ...(token ? { token } : {}),
  });
}

/**
 * Uploads `leaf` (PEM certificate and key, with `chainPem`) as an identity of `tenant` named `name`
 * through the JSON upload, with `token`; returns the identity's id.
 */
export async function uploadPem(
  twoway: Pick<TestTwoway, 'call'>,
  tenant: string,
  leaf: { certPem: string; keyPem: string },
  chainPem: string,
  options: { token?: string; name?: string } = {},
): Promise<string> {
  const response = await twoway.call(`/v1/tenants/${tenant}/identities`, {
    method: 'POST',
    ...(options.token !== undefined ? { token: options.token } : {}),
    json: {
      name: options.name ?? 'identity',
      certificatePem: leaf.certPem,
      privateKeyPem: leaf.keyPem,
      chainPem,
    },
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return ((await response.json()) as { id: string }).id;
}
