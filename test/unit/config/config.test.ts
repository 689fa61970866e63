import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig, redactedConfig, redactUrlCredentials } from '../../../src/config/config.js';
import { tempDir } from '../../fixtures/pki.js';

describe('loadConfig', () => {
  test('embedded defaults need no settings', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      httpPort: 8080,
      edgePort: 8443,
      dataDir: './data',
      forwardAllowPrivate: false,
      maxUploadBytes: 1_048_576,
      logLevel: 'info',
    });
    expect(config.databaseUrl).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  test('environment values are converted, and the file is overridden by the environment', () => {
    const { dir, cleanup } = tempDir();
    const file = join(dir, 'twoway.json');
    writeFileSync(
      file,
      JSON.stringify({ TWOWAY_HTTP_PORT: 9000, TWOWAY_LOG_LEVEL: 'warn', TWOWAY_EDGE_PORT: 9443 }),
    );
    const config = loadConfig({
      TWOWAY_CONFIG_FILE: file,
      TWOWAY_HTTP_PORT: '9100',
      TWOWAY_FORWARD_ALLOW_PRIVATE: 'true',
    });
    expect(config.httpPort).toBe(9100);
    expect(config.edgePort).toBe(9443);
    expect(config.logLevel).toBe('warn');
    expect(config.forwardAllowPrivate).toBe(true);
    cleanup();
  });

  test('every problem is reported at once, secrets are never echoed', () => {
    let error: unknown;
    try {
      loadConfig({
        TWOWAY_HTTP_PORT: 'eighty',
        TWOWAY_FORWARD_ALLOW_PRIVATE: 'yes',
        TWOWAY_MASTER_KEY: 'c2hvcnQ=',
        TWOWAY_OPERATOR_TOKEN: 'short-secret',
        TWOWAY_DATABASE_URL: 'mysql://x',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { problems, message } = error as ConfigError;
    expect(problems.some((p) => p.startsWith('TWOWAY_HTTP_PORT'))).toBe(true);
    expect(problems.some((p) => p.startsWith('TWOWAY_FORWARD_ALLOW_PRIVATE'))).toBe(true);
    expect(problems.some((p) => p.startsWith('TWOWAY_MASTER_KEY'))).toBe(true);
    expect(problems.some((p) => p.startsWith('TWOWAY_OPERATOR_TOKEN'))).toBe(true);
    expect(problems.some((p) => p.startsWith('TWOWAY_DATABASE_URL'))).toBe(true);
    expect(message).not.toContain('short-secret');
    expect(message).not.toContain('c2hvcnQ=');
  });

  test('TWOWAY_KMS=pkcs11 needs a module, a token and one PIN source; a PIN file is read and redacted', () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        loadConfig(env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ TWOWAY_KMS: 'pkcs11' })).toEqual([
      'TWOWAY_PKCS11_MODULE: required with TWOWAY_KMS=pkcs11',
      'TWOWAY_PKCS11_TOKEN_LABEL: required with TWOWAY_KMS=pkcs11',
      'TWOWAY_PKCS11_PIN or TWOWAY_PKCS11_PIN_FILE: required with TWOWAY_KMS=pkcs11',
    ]);
    const { dir, cleanup } = tempDir();
    const pinFile = join(dir, 'pin');
    writeFileSync(pinFile, '123456-pin\n');
    const base = {
      TWOWAY_KMS: 'pkcs11',
      TWOWAY_PKCS11_MODULE: '/lib/p11.so',
      TWOWAY_PKCS11_TOKEN_LABEL: 't',
    };
    expect(problems({ ...base, TWOWAY_PKCS11_PIN: '1', TWOWAY_PKCS11_PIN_FILE: pinFile })).toEqual([
      'TWOWAY_PKCS11_PIN and TWOWAY_PKCS11_PIN_FILE: set one, not both',
    ]);
    const config = loadConfig({ ...base, TWOWAY_PKCS11_PIN_FILE: pinFile });
    expect(config.pkcs11Pin).toBe('123456-pin');
    expect(config.pkcs11KeyLabel).toBe('twoway-kek');
    expect(redactedConfig(config).pkcs11Pin).toBe('[redacted]');
    expect(problems({ ...base, TWOWAY_PKCS11_PIN_FILE: join(dir, 'absent') })[0]).toMatch(
      /cannot be read \(ENOENT\)/,
    );
    cleanup();
  });

  test('TWOWAY_PUBLIC_URL must be a plain http(s) base URL', () => {
    expect(loadConfig({ TWOWAY_PUBLIC_URL: 'http://twoway.example.com/' }).publicUrl).toBe(
      'http://twoway.example.com/',
    );
    for (const bad of [
      'ftp://twoway.example.com',
      'http://user:secret@twoway.example.com',
      'https://twoway.example.com/?a=1',
      'https://twoway.example.com/#x',
      'https://',
    ]) {
      expect(() => loadConfig({ TWOWAY_PUBLIC_URL: bad }), bad).toThrow(/TWOWAY_PUBLIC_URL/);
    }
    // The value is never echoed: it may hold credentials.
    expect(() => loadConfig({ TWOWAY_PUBLIC_URL: 'ftp://user:s3cret@twoway.example.com' })).toThrow(
      /^(?!.*s3cret)/s,
    );
  });

  test('TWOWAY_HTTP_IDLE_TIMEOUT_MS must exceed the forward timeouts', () => {
    expect(loadConfig({}).httpIdleTimeoutMs).toBe(120_000);
    expect(() =>
      loadConfig({ TWOWAY_HTTP_IDLE_TIMEOUT_MS: '30000', TWOWAY_FORWARD_BODY_TIMEOUT_MS: '30000' }),
    ).toThrow(/TWOWAY_HTTP_IDLE_TIMEOUT_MS: must exceed/);
    expect(() => loadConfig({ TWOWAY_FORWARD_HEADERS_TIMEOUT_MS: '200000' })).toThrow(
      /TWOWAY_HTTP_IDLE_TIMEOUT_MS/,
    );
    expect(
      loadConfig({
        TWOWAY_HTTP_IDLE_TIMEOUT_MS: '1500',
        TWOWAY_FORWARD_HEADERS_TIMEOUT_MS: '500',
        TWOWAY_FORWARD_BODY_TIMEOUT_MS: '500',
      }).httpIdleTimeoutMs,
    ).toBe(1500);
  });

  test('an unreadable or unknown config file entry is a problem', () => {
    expect(() => loadConfig({ TWOWAY_CONFIG_FILE: '/nonexistent/twoway.json' })).toThrow(ConfigError);
    const { dir, cleanup } = tempDir();
    writeFileSync(join(dir, 'c.json'), JSON.stringify({ TWOWAY_NOPE: 1 }));
    expect(() => loadConfig({ TWOWAY_CONFIG_FILE: join(dir, 'c.json') })).toThrow(/TWOWAY_NOPE/);
    cleanup();
  });

  test('a bad database or edge upstream URL is shown with its credentials redacted', () => {
    const problemsOf = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).message;
      }
      throw new Error('loadConfig accepted it');
    };
    for (const [name, value, shown, secret] of [
      [
        'TWOWAY_DATABASE_URL',
        'mysql://app:hunter2-db@db.internal:3306/twoway',
        'mysql://***@db.internal:3306/twoway',
        /hunter2/,
      ],
      // Without a scheme, and with an unescaped / and @ in the password.
      [
        'TWOWAY_DATABASE_URL',
        'app:pa/ss@w0rd-db@db.internal/twoway',
        '"***@db.internal/twoway"',
        /pa\/ss|w0rd/,
      ],
      [
        'TWOWAY_EDGE_UPSTREAM',
        'ftp://edge:platform-pass@platform:8080/api',
        'ftp://***@platform:8080/api',
        /platform-pass/,
      ],
      // Matches the pattern, yet is no URL.
      [
        'TWOWAY_EDGE_UPSTREAM',
        'http://edge:platform-pass@platform:99999',
        'must be an http(s) URL',
        /platform-pass/,
      ],
    ] as const) {
      const message = problemsOf({ [name]: value });
      expect(message, value).toContain(`${name}:`);
      expect(message, value).toContain(shown);
      expect(message, value).not.toMatch(secret);
    }
  });

  test('redactUrlCredentials replaces the userinfo, and only it', () => {
    expect(redactUrlCredentials('postgres://app:s3cret@db/twoway?sslmode=require')).toBe(
      'postgres://***@db/twoway?sslmode=require',
    );
    expect(redactUrlCredentials('postgres://db/twoway')).toBe('postgres://db/twoway');
    expect(redactUrlCredentials('not a url')).toBe('not a url');
  });

  test('a malformed config file is reported by line and column, never by its text', () => {
    const { dir, cleanup } = tempDir();
    const token = 'operator-token-in-the-file-0123';
    for (const [name, text] of [
      ['trailing.json', `{\n  "TWOWAY_OPERATOR_TOKEN": "${token}" x\n}`],
      ['token.json', `{"TWOWAY_OPERATOR_TOKEN": ${token}}`],
      ['truncated.json', `{"TWOWAY_OPERATOR_TOKEN": "${token}`],
      ['array.json', `["${token}"]`],
      ['pasted.json', `{"${token}": 1}`],
    ] as const) {
      writeFileSync(join(dir, name), text);
      let message = '';
      try {
        loadConfig({ TWOWAY_CONFIG_FILE: join(dir, name) });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, name).toMatch(/TWOWAY_CONFIG_FILE|config file/);
      expect(message, name).not.toContain(token);
      expect(message, name).not.toContain(token.slice(0, 12));
    }
    writeFileSync(join(dir, 'trailing.json'), `{\n  "TWOWAY_OPERATOR_TOKEN": "${token}" x\n}`);
    expect(() => loadConfig({ TWOWAY_CONFIG_FILE: join(dir, 'trailing.json') })).toThrow(
      /is not valid JSON \(line 2, column \d+\)/,
    );
    cleanup();
  });

  test('redactedConfig hides secrets', () => {
    const config = loadConfig({ TWOWAY_OPERATOR_TOKEN: 'operator-token-long-enough' });
    expect(redactedConfig(config).operatorToken).toBe('[redacted]');
  });

  test('TWOWAY_IDENTITY_PASSWORD (the CLI identity password) is read here and is a secret', () => {
    const config = loadConfig({ TWOWAY_IDENTITY_PASSWORD: 'p12-secret' });
    expect(config.identityPassword).toBe('p12-secret');
    expect(redactedConfig(config).identityPassword).toBe('[redacted]');
    expect(loadConfig({}).identityPassword).toBeUndefined();
  });
});
