import { errors } from 'undici';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import { mapUpstreamError } from '../../../src/forward/proxy.js';

function coded(code: string, message = code, cause?: unknown): Error {
  const err = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  err.code = code;
  return err;
}

describe('mapUpstreamError', () => {
  it.each([
    ['UND_ERR_CONNECT_TIMEOUT', 'upstream_timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout'],
    ['UND_ERR_BODY_TIMEOUT', 'upstream_timeout'],
    ['ETIMEDOUT', 'upstream_timeout'],
    ['ECONNREFUSED', 'upstream_unreachable'],
    ['ENOTFOUND', 'upstream_unreachable'],
    ['EHOSTUNREACH', 'upstream_unreachable'],
    ['UND_ERR_SOCKET', 'upstream_unreachable'],
    ['HPE_INVALID_CONSTANT', 'upstream_protocol_error'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'upstream_tls_failed'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'upstream_tls_failed'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'upstream_tls_failed'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'upstream_tls_failed'],
    ['CERT_HAS_EXPIRED', 'upstream_tls_failed'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'upstream_tls_failed'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'upstream_tls_failed'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'upstream_tls_failed'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'upstream_tls_failed'],
    ['TWOWAY_DESTINATION_BLOCKED', 'forward_destination_blocked'],
  ])('maps %s to %s, keeping the original as cause', (code, expected) => {
    const original = coded(code, `secret detail 10.1.2.3 ${code}`);
    const mapped = mapUpstreamError(original);
    expect(mapped).toBeInstanceOf(AppError);
    expect(mapped.code).toBe(expected);
    expect(mapped.cause).toBe(original);
    // The detail is ours: it never echoes the original message (addresses, host names).
    expect(mapped.detail).not.toContain('10.1.2.3');
    expect(mapped.detail.length).toBeLessThan(120);
  });

  it("maps undici's parser error, which undici 7 makes without an HPE_ code, to upstream_protocol_error", () => {
    const parser = new errors.HTTPParserError(
      'Response does not match the HTTP/1.1 protocol (Expected HTTP/)',
    );
    expect(parser.code).toBeUndefined();
    const mapped = mapUpstreamError(parser);
    expect(mapped.code).toBe('upstream_protocol_error');
    expect(mapped.status).toBe(502);
    expect(mapped.cause).toBe(parser);
  });

  it('finds the code in a cause chain', () => {
    expect(mapUpstreamError(coded('UND_ERR', 'wrapped', coded('CERT_HAS_EXPIRED'))).code).toBe(
      'upstream_tls_failed',
    );
  });

  it('finds the code in AggregateError members (Happy Eyeballs tries several addresses)', () => {
    const err = new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')], 'all failed');
    expect(mapUpstreamError(err).code).toBe('upstream_unreachable');
  });

  it('prefers the TLS cause over the socket error that carries it', () => {
    expect(
      mapUpstreamError(coded('ECONNRESET', 'reset', coded('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'))).code,
    ).toBe('upstream_tls_failed');
  });

  it('reads a fresh connection closed before any response byte as a refused client certificate', () => {
    const closed = Object.assign(coded('UND_ERR_SOCKET', 'other side closed'), {
      socket: { bytesRead: 0, bytesWritten: 65 },
    });
    expect(mapUpstreamError(closed).code).toBe('upstream_tls_failed');
    const reused = Object.assign(coded('UND_ERR_SOCKET', 'other side closed'), {
      socket: { bytesRead: 5120, bytesWritten: 650 },
    });
    expect(mapUpstreamError(reused).code).toBe('upstream_unreachable');
  });

  it('reads Node\'s "disconnected before secure TLS connection" as a TLS failure, a socket reset as unreachable', () => {
    const handshake = coded(
      'ECONNRESET',
      'Client network socket disconnected before secure TLS connection was established',
    );
    expect(mapUpstreamError(handshake).code).toBe('upstream_tls_failed');
    const reset = Object.assign(coded('ECONNRESET', 'read ECONNRESET'), { syscall: 'read', errno: -104 });
    expect(mapUpstreamError(reset).code).toBe('upstream_unreachable');
  });

  it('returns an AppError unchanged and anything else as internal_error', () => {
    const app = new AppError('upstream_timeout');
    expect(mapUpstreamError(app)).toBe(app);
    expect(mapUpstreamError(new Error('bug')).code).toBe('internal_error');
    expect(mapUpstreamError('not even an error').code).toBe('internal_error');
  });
});
