/**
 * Reads what a TLS server said during the handshake from the raw bytes it sent, so the certificate
 * tester can report what Node's TLS API does not expose: whether the server sent a
 * CertificateRequest and which CA names it listed (RFC 8446 §4.3.2 `certificate_authorities`,
 * RFC 5246 §7.4.4 `certificate_authorities`), and the server's certificate chain even when the
 * handshake was refused because that chain is not trusted.
 *
 * TLS 1.2 sends these messages in the clear. TLS 1.3 encrypts everything after the ServerHello with
 * the server handshake traffic secret; Node hands that secret to the client through the `keylog`
 * event (NSS key log format, the same lines as SSLKEYLOGFILE), so we derive the key and IV
 * (RFC 8446 §7.3) and decrypt the server's handshake records ourselves, in memory, for this one
 * connection. Only the handshake flight is decrypted; application data is never touched.
 */
import { createDecipheriv, createHmac } from 'node:crypto';

/** TLS content types (RFC 8446 §5.1). */
const CHANGE_CIPHER_SPEC = 20;
const ALERT = 21;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;

/** Handshake message types (RFC 8446 §4, RFC 5246 §7.4). */
const SERVER_HELLO = 2;
const CERTIFICATE = 11;
const CERTIFICATE_REQUEST = 13;
const SERVER_HELLO_DONE = 14;
const FINISHED = 20;

const EXT_SUPPORTED_VERSIONS = 43;
const EXT_CERTIFICATE_AUTHORITIES = 47;

/** ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3). */
const HELLO_RETRY_RANDOM = Buffer.from(
  'cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c',
  'hex',
);

/** TLS 1.3 cipher suites (RFC 8446 §B.4): AEAD, key length, hash. */
const TLS13_SUITES: Record<number, { cipher: string; keyBytes: number; hash: 'sha256' | 'sha384' }> = {
  4865: { cipher: 'aes-128-gcm', keyBytes: 16, hash: 'sha256' },
  4866: { cipher: 'aes-256-gcm', keyBytes: 32, hash: 'sha384' },
  4867: { cipher: 'chacha20-poly1305', keyBytes: 32, hash: 'sha256' },
};

/** What the server's handshake flight showed. */
export interface ServerHandshake {
  /** `TLSv1.2` or `TLSv1.3` once a ServerHello was read. */
  version?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * True when a CertificateRequest was read, false when the server's flight ended (ServerHelloDone,
   * Finished) without one, undefined when we could not tell (the flight was cut short or could not
   * be decrypted).
   */
  certificateRequested?: boolean;
  /** DER-encoded distinguished names from the CertificateRequest (empty when it listed none). */
  acceptableCaNames: Buffer[];
  /** The server's certificates as sent, DER, leaf first. */
  serverCertificates: Buffer[];
  /** Set when the flight could not be read; a short reason for the report. */
  unreadable?: string;
}

/** Secrets from Node's `keylog` event, by label (`SERVER_HANDSHAKE_TRAFFIC_SECRET`, ...). */
export type KeyLog = Map<string, Buffer>;

/** Parses one NSS key log line (`LABEL <client random hex> <secret hex>`) into `into`. */
export function addKeyLogLine(into: KeyLog, line: Buffer | string): void {
  const [label, , secret] = String(line).trim().split(/\s+/);
  if (label && secret && /^[0-9a-f]+$/i.test(secret)) into.set(label, Buffer.from(secret, 'hex'));
}

/** HKDF-Expand (RFC 5869 §2.3). */
function hkdfExpand(hash: string, prk: Buffer, info: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  let total = 0;
  for (let i = 1; total < length; i++) {
    previous = createHmac(hash, prk)
      .update(Buffer.concat([previous, info, Buffer.from([i])]))
      .digest();
    blocks.push(previous);
    total += previous.length;
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** HKDF-Expand-Label (RFC 8446 §7.1) with an empty context. */
export function expandLabel(hash: string, secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([0]), // empty context
  ]);
  return hkdfExpand(hash, secret, info, length);
}

/** A bounds-checked reader over one message; any overrun throws, ending the parse of that message. */
class Reader {
  #offset = 0;
  constructor(private readonly data: Buffer) {}
  get left(): number {
    return this.data.length - this.#offset;
  }
  uint(bytes: number): number {
    if (this.left < bytes) throw new RangeError('truncated');
    const value = this.data.readUIntBE(this.#offset, bytes);
    this.#offset += bytes;
    return value;
  }
  bytes(length: number): Buffer {
    if (this.left < length) throw new RangeError('truncated');
    const value = this.data.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }
  /** A vector with a `lengthBytes`-byte length prefix. */
  vector(lengthBytes: number): Buffer {
    return this.bytes(this.uint(lengthBytes));
  }
}

/** Splits a `DistinguishedName authorities<..>` vector body into DER names. */
function distinguishedNames(body: Buffer): Buffer[] {
  const names: Buffer[] = [];
  const reader = new Reader(body);
  while (reader.left > 0) names.push(Buffer.from(reader.vector(2)));
  return names;
}

/**
 * Parses the server's side of a TLS 1.2 or 1.3 handshake from `serverBytes` (everything the server
 * sent, in order), decrypting TLS 1.3 handshake records with the `SERVER_HANDSHAKE_TRAFFIC_SECRET`
 * from `keyLog`. Never throws: what could not be read is reported through `unreadable`.
 */
export function readServerHandshake(serverBytes: Buffer, keyLog: KeyLog): ServerHandshake {
  const result: ServerHandshake = { acceptableCaNames: [], serverCertificates: [] };
  let handshakeBuffer = Buffer.alloc(0);
  let decrypt: ((header: Buffer, body: Buffer) => Buffer) | undefined;
  let done = false;

  const onMessage = (type: number, body: Buffer): void => {
    const reader = new Reader(body);
    switch (type) {
      case SERVER_HELLO: {
        reader.uint(2); // legacy_version
        const random = reader.bytes(32);
        if (random.equals(HELLO_RETRY_RANDOM)) return; // a HelloRetryRequest: the real one follows
        reader.vector(1); // legacy_session_id_echo
        const suite = reader.uint(2);
        reader.uint(1); // compression
        let version: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2';
        if (reader.left >= 2) {
          const extensions = new Reader(reader.vector(2));
          while (extensions.left > 0) {
            const extType = extensions.uint(2);
            const extBody = extensions.vector(2);
            if (
              extType === EXT_SUPPORTED_VERSIONS &&
              extBody.length === 2 &&
              extBody.readUInt16BE(0) === 0x0304
            )
              version = 'TLSv1.3';
          }
        }
        result.version = version;
        if (version === 'TLSv1.3') decrypt = tls13Decrypter(suite, keyLog);
        return;
      }
      case CERTIFICATE: {
        if (result.version === 'TLSv1.3') reader.vector(1); // certificate_request_context
        const list = new Reader(reader.vector(3));
        while (list.left > 0) {
          result.serverCertificates.push(Buffer.from(list.vector(3)));
          if (result.version === 'TLSv1.3') list.vector(2); // per-certificate extensions
        }
        return;
      }
      case CERTIFICATE_REQUEST: {
        result.certificateRequested = true;
        if (result.version === 'TLSv1.3') {
          reader.vector(1); // certificate_request_context
          const extensions = new Reader(reader.vector(2));
          while (extensions.left > 0) {
            const extType = extensions.uint(2);
            const extBody = extensions.vector(2);
            if (extType === EXT_CERTIFICATE_AUTHORITIES)
              result.acceptableCaNames = distinguishedNames(new Reader(extBody).vector(2));
          }
        } else {
          reader.vector(1); // certificate_types
          reader.vector(2); // supported_signature_algorithms
          result.acceptableCaNames = distinguishedNames(reader.vector(2));
        }
        return;
      }
      case SERVER_HELLO_DONE:
      case FINISHED:
        // The end of the server's flight: no CertificateRequest follows.
        result.certificateRequested ??= false;
        done = true;
        return;
    }
  };

  const feedHandshake = (data: Buffer): void => {
    handshakeBuffer = Buffer.concat([handshakeBuffer, data]);
    while (handshakeBuffer.length >= 4 && !done) {
      const length = handshakeBuffer.readUIntBE(1, 3);
      if (handshakeBuffer.length < 4 + length) break;
      const type = handshakeBuffer[0] ?? 0;
      const body = handshakeBuffer.subarray(4, 4 + length);
      handshakeBuffer = handshakeBuffer.subarray(4 + length);
      try {
        onMessage(type, body);
      } catch {
        result.unreadable = 'a handshake message could not be parsed';
        done = true;
      }
    }
  };

  let offset = 0;
  while (!done && offset + 5 <= serverBytes.length) {
    const contentType = serverBytes[offset] ?? 0;
    const length = serverBytes.readUInt16BE(offset + 3);
    if (offset + 5 + length > serverBytes.length) break;
    const header = serverBytes.subarray(offset, offset + 5);
    const body = serverBytes.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    if (contentType === HANDSHAKE && (decrypt === undefined || result.version !== 'TLSv1.3')) {
      feedHandshake(body);
    } else if (contentType === CHANGE_CIPHER_SPEC) {
      // TLS 1.2: what follows is encrypted (only the server's Finished); TLS 1.3: a compatibility no-op.
      if (result.version !== 'TLSv1.3') done = true;
    } else if (contentType === APPLICATION_DATA && result.version === 'TLSv1.3') {
      if (decrypt === undefined) {
        result.unreadable = 'the TLS 1.3 handshake secret was not available';
        break;
      }
      let inner: Buffer;
      try {
        inner = decrypt(header, body);
      } catch {
        result.unreadable = 'the TLS 1.3 handshake could not be decrypted';
        break;
      }
      // TLSInnerPlaintext: content, then the real content type, then zero padding (RFC 8446 §5.2).
      let end = inner.length - 1;
      while (end >= 0 && inner[end] === 0) end--;
      if (end < 0) continue;
      const innerType = inner[end];
      if (innerType === HANDSHAKE) feedHandshake(inner.subarray(0, end));
      else if (innerType === ALERT) done = true;
    } else if (contentType === ALERT) {
      done = true;
    } else {
      break;
    }
  }
  return result;
}

/** A decrypter for the server's TLS 1.3 handshake records; undefined when the secret or suite is unknown. */
function tls13Decrypter(
  suite: number,
  keyLog: KeyLog,
): ((header: Buffer, body: Buffer) => Buffer) | undefined {
  const params = TLS13_SUITES[suite];
  const secret = keyLog.get('SERVER_HANDSHAKE_TRAFFIC_SECRET');
  if (!params || !secret) return undefined;
  const key = expandLabel(params.hash, secret, 'key', params.keyBytes);
  const iv = expandLabel(params.hash, secret, 'iv', 12);
  let sequence = 0n;
  return (header, body) => {
    // Per-record nonce: the IV XOR the 64-bit record sequence number, left-padded (RFC 8446 §5.3).
    const nonce = Buffer.from(iv);
    const seq = Buffer.alloc(8);
    seq.writeBigUInt64BE(sequence);
    sequence += 1n;
    for (let i = 0; i < 8; i++) nonce[4 + i] = (nonce[4 + i] ?? 0) ^ (seq[i] ?? 0);
    if (body.length < 16) throw new RangeError('record too short');
    const decipher = createDecipheriv(params.cipher as 'aes-128-gcm', key, nonce, { authTagLength: 16 });
    decipher.setAAD(header);
    decipher.setAuthTag(body.subarray(body.length - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
  };
}
