import { Writable } from 'node:stream';
import { pino } from 'pino';
import { type Config, loadConfig } from '../../src/config/config.js';
import { startTwoway, type Twoway } from '../../src/main.js';
import type { Clock } from '../../src/shared/clock.js';
import { REDACT_PATHS } from '../../src/shared/logger.js';
import { tempDir } from '../fixtures/pki.js';

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
      await twoway.close();
      cleanup();
    },
  };
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
