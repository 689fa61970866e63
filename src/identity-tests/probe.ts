/**
 * One instrumented HTTPS request for the certificate tester: DNS (through the forward SSRF guard),
 * TCP, a TLS handshake presenting the client certificate under test, and a GET whose status and
 * first bytes are kept. Every byte the server sends is also copied aside (in memory) so that
 * {@link readServerHandshake} can report the CertificateRequest and the server chain, which Node's
 * TLS API does not expose.
 */
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { DESTINATION_BLOCKED, guardedLookup } from '../net/address-guard.js';
import { addKeyLogLine, type KeyLog, readServerHandshake, type ServerHandshake } from './tls-records.js';

/** What to probe and with what. */
export interface ProbeOptions {
  /** Already checked by parseForwardUrl. */
  url: URL;
  allowPrivate: boolean;
  /** The client certificate (leaf + chain, PEM) and its key (PKCS#8 PEM); none probes without one. */
  client?: { certificatesPem: string; keyPem: string };
  /** CA certificates that verify the server instead of the system roots. */
  trustAnchorsPem?: string;
  /** Deadline for the whole probe, from the first DNS query to the last body byte kept. */
  timeoutMs: number;
  /** How much of the response body to keep (bytes). */
  maxBodyBytes: number;
}

/** Where the probe stopped. */
export type ProbePhase = 'dns' | 'tcp' | 'tls' | 'http' | 'done';

/** What happened; milliseconds are rounded to 0.1. */
export interface ProbeResult {
  /** The phase the probe reached (`done` when a response was read). */
  phase: ProbePhase;
  timedOut: boolean;
  /** The error that ended the probe early: a Node/OpenSSL code and message (never key material). */
  error?: { code: string; message: string };
  /** Set when the lookup refused the destination (SSRF guard). */
  blocked: boolean;
  addresses: string[];
  handshakeCompleted: boolean;
  protocol?: string;
  cipher?: string;
  /** Node's verdict on the server chain (rejectUnauthorized is always on). */
  serverTrusted: boolean;
  serverTrustError?: string;
  handshake: ServerHandshake;
  serverChain: X509Certificate[];
  http?: { status: number; headers: Record<string, string>; body: Buffer; truncated: boolean };
  timingsMs: { dns?: number; tcp?: number; tls?: number; firstByte?: number; total: number };
}

/** Most bytes of the server's stream kept for reading its handshake (bytes): a flight is far smaller. */
const MAX_RECORDED_BYTES = 256 * 1024;

/**
 * A Duplex over a TCP socket that copies the first {@link MAX_RECORDED_BYTES} the server sends into
 * `received` (a server streaming without end must not fill memory until the timeout). tls.connect
 * wraps a non-net stream in a JS stream, so every server byte passes through `onData` first.
 */
class RecordingStream extends Duplex {
  readonly received: Buffer[] = [];
  #recorded = 0;
  constructor(private readonly socket: net.Socket) {
    super();
    socket.on('data', (chunk: Buffer) => {
      if (this.#recorded < MAX_RECORDED_BYTES) {
        const kept = chunk.subarray(0, MAX_RECORDED_BYTES - this.#recorded);
        this.received.push(kept);
        this.#recorded += kept.length;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }
  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.socket.write(chunk, done);
  }
  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }
  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Runs one probe; never throws for network or TLS failures: they are in the result. */
export function probe(options: ProbeOptions): Promise<ProbeResult> {
  const { url } = options;
  const started = performance.now();
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 443 : Number(url.port);
  const isIp = net.isIP(host) !== 0;
  const keyLog: KeyLog = new Map();
  const addresses: string[] = isIp ? [host] : [];
  const marks: { dns?: number; tcp?: number; tls?: number; firstByte?: number } = {};
  const result: ProbeResult = {
    phase: isIp ? 'tcp' : 'dns',
    timedOut: false,
    blocked: false,
    addresses,
    handshakeCompleted: false,
    serverTrusted: false,
    handshake: { acceptableCaNames: [], serverCertificates: [] },
    serverChain: [],
    timingsMs: { total: 0 },
  };
  if (isIp) marks.dns = started;

  const guarded = guardedLookup(options.allowPrivate);
  const lookup: net.LookupFunction = (hostname, lookupOptions, callback) => {
    guarded(hostname, lookupOptions, (err, address, family) => {
      marks.dns = performance.now();
      if (!err) {
        const list = Array.isArray(address) ? address.map((a) => a.address) : [address];
        addresses.push(...list.filter((a) => !addresses.includes(a)));
        result.phase = 'tcp';
      }
      callback(err, address as string, family as number);
    });
  };

  return new Promise<ProbeResult>((resolve) => {
    let settled = false;
    const raw = net.connect({ host, port, ...(isIp ? {} : { lookup }) });
    const recording = new RecordingStream(raw);
    let tlsSocket: tls.TLSSocket | undefined;
    let request: http.ClientRequest | undefined;

    const finish = (error?: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error && !result.timedOut) {
        const code = typeof error.code === 'string' ? error.code : 'ERR_UNKNOWN';
        result.error = { code, message: error.message };
        if (code === DESTINATION_BLOCKED) result.blocked = true;
      }
      result.handshake = readServerHandshake(Buffer.concat(recording.received), keyLog);
      result.serverChain = result.handshake.serverCertificates.flatMap((der) => {
        try {
          return [new X509Certificate(der)];
        } catch {
          return [];
        }
      });
      const end = performance.now();
      const dnsEnd = marks.dns;
      result.timingsMs = {
        ...(dnsEnd !== undefined ? { dns: round(dnsEnd - started) } : {}),
        ...(marks.tcp !== undefined && dnsEnd !== undefined ? { tcp: round(marks.tcp - dnsEnd) } : {}),
        ...(marks.tls !== undefined && marks.tcp !== undefined ? { tls: round(marks.tls - marks.tcp) } : {}),
        ...(marks.firstByte !== undefined && marks.tls !== undefined
          ? { firstByte: round(marks.firstByte - marks.tls) }
          : {}),
        total: round(end - started),
      };
      request?.destroy();
      tlsSocket?.destroy();
      recording.destroy();
      raw.destroy();
      resolve(result);
    };

    const timer = setTimeout(() => {
      result.timedOut = true;
      finish();
    }, options.timeoutMs);

    raw.once('connect', () => {
      marks.tcp = performance.now();
      result.phase = 'tls';
    });
    raw.once('error', (err) => finish(err));

    tlsSocket = tls.connect({
      socket: recording,
      host,
      ...(isIp ? {} : { servername: host }),
      ...(options.client ? { cert: options.client.certificatesPem, key: options.client.keyPem } : {}),
      ...(options.trustAnchorsPem ? { ca: options.trustAnchorsPem } : {}),
      ALPNProtocols: ['http/1.1'],
      // The default, stated: the tester reports an untrusted server, it never talks to one.
      rejectUnauthorized: true,
    });
    tlsSocket.on('keylog', (line) => addKeyLogLine(keyLog, line));
    tlsSocket.once('error', (err) => finish(err));
    tlsSocket.once('secureConnect', () => {
      const socket = tlsSocket as tls.TLSSocket;
      marks.tls = performance.now();
      result.handshakeCompleted = true;
      result.serverTrusted = socket.authorized;
      if (!socket.authorized && socket.authorizationError)
        result.serverTrustError = String(socket.authorizationError);
      result.protocol = socket.getProtocol() ?? undefined;
      result.cipher = socket.getCipher()?.name;
      result.phase = 'http';
      request = http.request({
        // No agent: this one socket, already through DNS, TCP and TLS, carries the request.
        createConnection: () => socket,
        method: 'GET',
        setHost: false,
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, 'user-agent': 'twoway-identity-test', accept: '*/*', connection: 'close' },
      });
      request.once('error', (err) => finish(err));
      request.once('response', (response) => {
        marks.firstByte = performance.now();
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        const keep = (truncated: boolean) => {
          result.phase = 'done';
          const body = Buffer.concat(chunks);
          result.http = {
            status: response.statusCode ?? 0,
            headers,
            body: body.subarray(0, options.maxBodyBytes),
            truncated: truncated || body.length > options.maxBodyBytes,
          };
          finish();
        };
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          if (size > options.maxBodyBytes) keep(true);
        });
        response.once('end', () => keep(false));
        response.once('error', () => keep(true));
      });
      request.end();
    });
  });
}
