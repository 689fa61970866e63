import { describe, expect, test } from 'vitest';
import { addKeyLogLine, expandLabel, readServerHandshake } from '../../../src/identity-tests/tls-records.js';

/** A TLS record: type, version 0x0303, length, body. */
function record(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, 3, 3, body.length >> 8, body.length & 0xff]), body]);
}

/** A handshake message: type, 24-bit length, body. */
function message(type: number, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
}

function vector(lengthBytes: number, body: Buffer): Buffer {
  const length = Buffer.alloc(lengthBytes);
  length.writeUIntBE(body.length, 0, lengthBytes);
  return Buffer.concat([length, body]);
}

const serverHello12 = message(
  2,
  Buffer.concat([
    Buffer.from([3, 3]),
    Buffer.alloc(32, 7),
    vector(1, Buffer.alloc(0)),
    Buffer.from([0xc0, 0x2b, 0]),
  ]),
);

describe('reading the server handshake', () => {
  test('HKDF-Expand-Label matches RFC 8448 §3 (server handshake key and IV)', () => {
    const secret = Buffer.from('b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38', 'hex');
    expect(expandLabel('sha256', secret, 'key', 16).toString('hex')).toBe('3fce516009c21727d0f2e4e86ee403bc');
    expect(expandLabel('sha256', secret, 'iv', 12).toString('hex')).toBe('5d313eb2671276ee13000b30');
  });

  test('TLS 1.2: the certificate chain and the CA names of a CertificateRequest, across record boundaries', () => {
    const certs = [Buffer.from('leaf-der'), Buffer.from('intermediate-der')];
    const certificate = message(11, vector(3, Buffer.concat(certs.map((c) => vector(3, c)))));
    const names = [Buffer.from('30-first-name'), Buffer.from('30-second')];
    const request = message(
      13,
      Buffer.concat([
        vector(1, Buffer.from([1, 64])),
        vector(2, Buffer.from([4, 3, 8, 4])),
        vector(2, Buffer.concat(names.map((n) => vector(2, n)))),
      ]),
    );
    const flight = Buffer.concat([serverHello12, certificate, request, message(14, Buffer.alloc(0))]);
    // Split the flight over two records in the middle of a message.
    const bytes = Buffer.concat([record(22, flight.subarray(0, 50)), record(22, flight.subarray(50))]);
    const read = readServerHandshake(bytes, new Map());
    expect(read).toEqual({
      version: 'TLSv1.2',
      certificateRequested: true,
      acceptableCaNames: names,
      serverCertificates: certs,
    });
  });

  test('TLS 1.2 without a CertificateRequest: certificateRequested is false; a cut-short flight leaves it unknown', () => {
    const done = Buffer.concat([serverHello12, message(14, Buffer.alloc(0))]);
    expect(readServerHandshake(record(22, done), new Map()).certificateRequested).toBe(false);
    expect(readServerHandshake(record(22, serverHello12), new Map()).certificateRequested).toBeUndefined();
  });

  test('TLS 1.3 without the key log secret is reported as unreadable, never guessed', () => {
    const supportedVersions = Buffer.from([0, 43, 0, 2, 3, 4]);
    const hello = message(
      2,
      Buffer.concat([
        Buffer.from([3, 3]),
        Buffer.alloc(32, 9),
        vector(1, Buffer.alloc(0)),
        Buffer.from([0x13, 0x01, 0]),
        vector(2, supportedVersions),
      ]),
    );
    const read = readServerHandshake(
      Buffer.concat([record(22, hello), record(23, Buffer.alloc(40))]),
      new Map(),
    );
    expect(read.version).toBe('TLSv1.3');
    expect(read.certificateRequested).toBeUndefined();
    expect(read.unreadable).toMatch(/secret/);
  });

  test('key log lines are parsed by label', () => {
    const log = new Map<string, Buffer>();
    addKeyLogLine(log, 'SERVER_HANDSHAKE_TRAFFIC_SECRET 00ff 0a0b\n');
    addKeyLogLine(log, '# comment');
    expect([...log.entries()]).toEqual([['SERVER_HANDSHAKE_TRAFFIC_SECRET', Buffer.from([10, 11])]]);
  });
});
