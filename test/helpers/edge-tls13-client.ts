/**
 * A minimal TLS 1.3 client (RFC 8446) written for one test: present a client certificate and sign
 * the CertificateVerify with a key of our choosing, which no real TLS library allows (OpenSSL,
 * curl and Node all refuse a certificate and key that do not match before connecting). With the
 * certificate's own key it completes the handshake and sends one HTTP/1.1 request (the positive
 * control that shows the client is correct); with another key the server must end the handshake.
 *
 * One cipher suite (TLS_AES_128_GCM_SHA256), one group (x25519), ECDSA P-256 client keys
 * (ecdsa_secp256r1_sha256). The server is verified as a real client would: its certificate chain up
 * to a trusted root and for the server name, its CertificateVerify signature over the handshake, and
 * its Finished MAC; a failure throws before anything is sent.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from 'node:crypto';
import net from 'node:net';

const HASH_LEN = 32;

/** How the exchange ended. */
export type Tls13Outcome =
  | { kind: 'alert'; level: number; description: number }
  | { kind: 'response'; text: string }
  | { kind: 'closed' };

function u8(n: number): Buffer {
  return Buffer.from([n]);
}
function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}
function u24(n: number): Buffer {
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}
function vec8(b: Buffer): Buffer {
  return Buffer.concat([u8(b.length), b]);
}
function vec16(b: Buffer): Buffer {
  return Buffer.concat([u16(b.length), b]);
}
function vec24(b: Buffer): Buffer {
  return Buffer.concat([u24(b.length), b]);
}
function handshake(type: number, body: Buffer): Buffer {
  return Buffer.concat([u8(type), u24(body.length), body]);
}
function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(body)]);
}
function sha256(...parts: Buffer[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}
function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** HKDF-Expand-Label (RFC 8446 §7.1); lengths here never exceed one SHA-256 block. */
function expandLabel(secret: Buffer, label: string, context: Buffer, length: number): Buffer {
  const info = Buffer.concat([u16(length), vec8(Buffer.from(`tls13 ${label}`, 'latin1')), vec8(context)]);
  return hmac(secret, Buffer.concat([info, u8(1)])).subarray(0, length);
}
function deriveSecret(secret: Buffer, label: string, transcriptHash: Buffer): Buffer {
  return expandLabel(secret, label, transcriptHash, HASH_LEN);
}

/** AES-128-GCM record protection for one direction (RFC 8446 §5.2, §5.3). */
class RecordKeys {
  readonly key: Buffer;
  readonly iv: Buffer;
  seq = 0n;
  constructor(readonly secret: Buffer) {
    this.key = expandLabel(secret, 'key', Buffer.alloc(0), 16);
    this.iv = expandLabel(secret, 'iv', Buffer.alloc(0), 12);
  }
  nonce(): Buffer {
    const nonce = Buffer.from(this.iv);
    const seq = Buffer.alloc(8);
    seq.writeBigUInt64BE(this.seq++);
    for (let i = 0; i < 8; i++) nonce[4 + i] = (nonce[4 + i] ?? 0) ^ (seq[i] ?? 0);
    return nonce;
  }
  seal(contentType: number, content: Buffer): Buffer {
    const inner = Buffer.concat([content, u8(contentType)]);
    const header = Buffer.concat([u8(23), u16(0x0303), u16(inner.length + 16)]);
    const cipher = createCipheriv('aes-128-gcm', this.key, this.nonce());
    cipher.setAAD(header);
    return Buffer.concat([header, cipher.update(inner), cipher.final(), cipher.getAuthTag()]);
  }
  open(header: Buffer, body: Buffer): { type: number; content: Buffer } {
    const decipher = createDecipheriv('aes-128-gcm', this.key, this.nonce());
    decipher.setAAD(header);
    decipher.setAuthTag(body.subarray(body.length - 16));
    const inner = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]);
    let end = inner.length - 1;
    while (end >= 0 && inner[end] === 0) end--;
    return { type: inner[end] ?? 0, content: inner.subarray(0, end) };
  }
}

/** Reads TLS records off a socket. */
class RecordReader {
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | null = null;
  #ended = false;
  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiting?.();
    });
    const end = () => {
      this.#ended = true;
      this.#waiting?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }
  async next(): Promise<{ header: Buffer; type: number; body: Buffer } | null> {
    for (;;) {
      if (this.#buffer.length >= 5) {
        const length = this.#buffer.readUInt16BE(3);
        if (this.#buffer.length >= 5 + length) {
          const header = this.#buffer.subarray(0, 5);
          const body = this.#buffer.subarray(5, 5 + length);
          this.#buffer = this.#buffer.subarray(5 + length);
          return { header, type: header[0] ?? 0, body };
        }
      }
      if (this.#ended) return null;
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
      });
      this.#waiting = null;
    }
  }
}

/**
 * Checks the server's Certificate message (RFC 8446 §4.4.2): the leaf is valid now, names
 * `serverName` and chains through the certificates sent up to a root in `caPem`.
 * @returns the leaf
 */
function verifyServerChain(message: Buffer, caPem: string, serverName: string): X509Certificate {
  const body = message.subarray(4);
  let at = 1 + (body[0] ?? 0);
  const end = at + 3 + body.readUIntBE(at, 3);
  at += 3;
  const sent: X509Certificate[] = [];
  while (at < end) {
    const length = body.readUIntBE(at, 3);
    sent.push(new X509Certificate(body.subarray(at + 3, at + 3 + length)));
    at += 3 + length + 2 + body.readUInt16BE(at + 3 + length);
  }
  const trusted = (caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  );
  const [leaf] = sent;
  if (!leaf) throw new Error('the server sent no certificate');
  const now = Date.now();
  if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo))
    throw new Error('server certificate not valid now');
  if (leaf.checkHost(serverName) === undefined)
    throw new Error(`server certificate is not for ${serverName}`);
  let current = leaf;
  for (let depth = 0; depth < 4; depth++) {
    const root = trusted.find(
      (t) => t.checkIssued(t) && current.checkIssued(t) && current.verify(t.publicKey),
    );
    if (root) return leaf;
    const parent = [...sent.slice(1), ...trusted].find(
      (c) => current.checkIssued(c) && current.verify(c.publicKey),
    );
    if (!parent) break;
    current = parent;
  }
  throw new Error('the server certificate does not chain to a trusted root');
}

/** Checks the server's CertificateVerify (RFC 8446 §4.4.3) over the transcript hash so far. */
function verifyServerSignature(
  message: Buffer,
  leaf: X509Certificate | undefined,
  transcriptHash: Buffer,
): void {
  if (!leaf) throw new Error('CertificateVerify before Certificate');
  const scheme = message.readUInt16BE(4);
  const signature = message.subarray(8, 8 + message.readUInt16BE(6));
  const signed = Buffer.concat([
    Buffer.alloc(64, 0x20),
    Buffer.from('TLS 1.3, server CertificateVerify', 'latin1'),
    u8(0),
    transcriptHash,
  ]);
  const ok =
    scheme === 0x0403
      ? verify('sha256', signed, leaf.publicKey, signature)
      : scheme === 0x0804
        ? verify(
            'sha256',
            signed,
            { key: leaf.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
            signature,
          )
        : scheme === 0x0807 && verify(null, signed, leaf.publicKey, signature);
  if (!ok) throw new Error('the server CertificateVerify does not verify');
}

/**
 * Connects to `host:port`, does a TLS 1.3 handshake presenting `certificateDer` and signing the
 * CertificateVerify with `signingKey` (ECDSA P-256), then sends `request` (raw HTTP/1.1) and returns
 * the first thing the server sends back after our Finished: an alert, the HTTP response, or nothing.
 */
export async function tls13Exchange(options: {
  host: string;
  port: number;
  serverName: string;
  certificateDer: Buffer;
  signingKey: KeyObject;
  request: string;
  /** Trusted roots and intermediates (PEM) for the server certificate. */
  ca: string;
}): Promise<Tls13Outcome> {
  const socket = net.connect(options.port, options.host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const reader = new RecordReader(socket);
  try {
    const share = generateKeyPairSync('x25519');
    const publicRaw = share.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
    const hello = handshake(
      1,
      Buffer.concat([
        u16(0x0303),
        randomBytes(32),
        vec8(randomBytes(32)),
        vec16(u16(0x1301)),
        vec8(u8(0)),
        vec16(
          Buffer.concat([
            extension(0, vec16(Buffer.concat([u8(0), vec16(Buffer.from(options.serverName, 'latin1'))]))),
            extension(10, vec16(u16(0x001d))),
            extension(13, vec16(Buffer.concat([u16(0x0403), u16(0x0804), u16(0x0807)]))),
            extension(43, vec8(u16(0x0304))),
            extension(51, vec16(Buffer.concat([u16(0x001d), vec16(publicRaw)]))),
          ]),
        ),
      ]),
    );
    socket.write(Buffer.concat([u8(22), u16(0x0301), vec16(hello)]));
    const transcript: Buffer[] = [hello];

    // ServerHello, in the clear.
    let record = await reader.next();
    while (record && record.type === 20) record = await reader.next();
    if (!record) return { kind: 'closed' };
    if (record.type === 21)
      return { kind: 'alert', level: record.body[0] ?? 0, description: record.body[1] ?? 0 };
    const serverHello = record.body;
    transcript.push(serverHello);
    let at = 4 + 2 + 32;
    at += 1 + (serverHello[at] ?? 0); // legacy_session_id_echo
    at += 2 + 1; // cipher_suite, legacy_compression_method
    const extensionsEnd = at + 2 + serverHello.readUInt16BE(at);
    at += 2;
    let serverShare: Buffer | undefined;
    while (at < extensionsEnd) {
      const type = serverHello.readUInt16BE(at);
      const length = serverHello.readUInt16BE(at + 2);
      if (type === 51) serverShare = serverHello.subarray(at + 4 + 4, at + 4 + length);
      at += 4 + length;
    }
    if (!serverShare) throw new Error('no key_share in ServerHello');
    const sharedSecret = diffieHellman({
      privateKey: share.privateKey,
      publicKey: createPublicKey({
        key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), serverShare]),
        format: 'der',
        type: 'spki',
      }),
    });

    const zeros = Buffer.alloc(HASH_LEN);
    const earlySecret = hmac(zeros, zeros);
    const handshakeSecret = hmac(deriveSecret(earlySecret, 'derived', sha256()), sharedSecret);
    const helloHash = sha256(...transcript);
    const clientHandshake = new RecordKeys(deriveSecret(handshakeSecret, 'c hs traffic', helloHash));
    const serverHandshake = new RecordKeys(deriveSecret(handshakeSecret, 's hs traffic', helloHash));
    const masterSecret = hmac(deriveSecret(handshakeSecret, 'derived', sha256()), zeros);

    // EncryptedExtensions, CertificateRequest, Certificate, CertificateVerify, Finished.
    let pending = Buffer.alloc(0);
    let requestContext = Buffer.alloc(0);
    let serverLeaf: X509Certificate | undefined;
    let serverFinished = false;
    while (!serverFinished) {
      record = await reader.next();
      if (!record) return { kind: 'closed' };
      if (record.type === 20) continue;
      if (record.type === 21)
        return { kind: 'alert', level: record.body[0] ?? 0, description: record.body[1] ?? 0 };
      const opened = serverHandshake.open(record.header, record.body);
      if (opened.type === 21) {
        return { kind: 'alert', level: opened.content[0] ?? 0, description: opened.content[1] ?? 0 };
      }
      pending = Buffer.concat([pending, opened.content]);
      while (pending.length >= 4) {
        const length = pending.readUIntBE(1, 3);
        if (pending.length < 4 + length) break;
        const message = pending.subarray(0, 4 + length);
        pending = pending.subarray(4 + length);
        if (message[0] === 13) requestContext = message.subarray(5, 5 + (message[4] ?? 0));
        if (message[0] === 11) serverLeaf = verifyServerChain(message, options.ca, options.serverName);
        if (message[0] === 15) verifyServerSignature(message, serverLeaf, sha256(...transcript));
        if (message[0] === 20) {
          const key = expandLabel(serverHandshake.secret, 'finished', Buffer.alloc(0), HASH_LEN);
          if (!hmac(key, sha256(...transcript)).equals(message.subarray(4)))
            throw new Error('bad server Finished');
          serverFinished = true;
        }
        transcript.push(message);
      }
    }
    const serverFinishedHash = sha256(...transcript);
    const clientApplication = new RecordKeys(deriveSecret(masterSecret, 'c ap traffic', serverFinishedHash));
    const serverApplication = new RecordKeys(deriveSecret(masterSecret, 's ap traffic', serverFinishedHash));

    // Our flight: Certificate, CertificateVerify (signed with the chosen key), Finished.
    const certificate = handshake(
      11,
      Buffer.concat([
        vec8(requestContext),
        vec24(Buffer.concat([vec24(options.certificateDer), vec16(Buffer.alloc(0))])),
      ]),
    );
    transcript.push(certificate);
    const signed = Buffer.concat([
      Buffer.alloc(64, 0x20),
      Buffer.from('TLS 1.3, client CertificateVerify', 'latin1'),
      u8(0),
      sha256(...transcript),
    ]);
    const certificateVerify = handshake(
      15,
      Buffer.concat([u16(0x0403), vec16(sign('sha256', signed, options.signingKey))]),
    );
    transcript.push(certificateVerify);
    const finishedKey = expandLabel(clientHandshake.secret, 'finished', Buffer.alloc(0), HASH_LEN);
    const finished = handshake(20, hmac(finishedKey, sha256(...transcript)));
    socket.write(
      Buffer.concat([
        Buffer.from([20, 3, 3, 0, 1, 1]), // middlebox-compatibility ChangeCipherSpec (RFC 8446 §D.4)
        clientHandshake.seal(22, Buffer.concat([certificate, certificateVerify, finished])),
        clientApplication.seal(23, Buffer.from(options.request, 'latin1')),
      ]),
    );

    // After its Finished the server writes with its application keys: session tickets, then the
    // HTTP response, or an alert if it refused our flight.
    let text = '';
    for (;;) {
      record = await reader.next();
      if (!record) return text.length > 0 ? { kind: 'response', text } : { kind: 'closed' };
      if (record.type === 21)
        return { kind: 'alert', level: record.body[0] ?? 0, description: record.body[1] ?? 0 };
      if (record.type !== 23) continue;
      const opened = serverApplication.open(record.header, record.body);
      if (opened.type === 21) {
        return { kind: 'alert', level: opened.content[0] ?? 0, description: opened.content[1] ?? 0 };
      }
      if (opened.type === 23) {
        text += opened.content.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        const length = Number(/content-length:\s*(\d+)/i.exec(text)?.[1] ?? -1);
        if (end >= 0 && length >= 0 && text.length >= end + 4 + length) return { kind: 'response', text };
      }
    }
  } finally {
    socket.destroy();
  }
}

/** TLS alert descriptions this test expects (RFC 8446 §6.2). */
export const ALERT_DECRYPT_ERROR = 51;
