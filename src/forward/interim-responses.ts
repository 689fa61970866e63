/**
 * Interim (1xx) responses dropped before undici's HTTP/1.1 parser sees them.
 *
 * RFC 9110 §15.2: "A client MUST be able to parse one or more 1xx responses received prior to a
 * final response, even if the client does not expect one." undici 7 (and 8) destroys the
 * connection on any `100 Continue` ("bad response", lib/dispatcher/client-h1.js: it never sends
 * `Expect: 100-continue`, so it takes one for a broken server; nodejs/undici#197 left it so), which
 * made a forward to a server that sends `100 Continue` unasked (IIS, some Java servers, proxies that
 * add the expectation) fail with 502 although a good answer followed.
 *
 * undici pulls a connection's bytes with `socket.read()` and writes each request head with one
 * `socket.write(string)` that starts with the request line; a connection carries one request at a
 * time (pipelining 1, undici's default, which no Agent here changes). So the first bytes read after
 * a request head was written start that request's response: when they are an interim response
 * (`HTTP/1.x 1xx` other than 101, which switches protocols and stays undici's to refuse) up to its
 * empty line, they are dropped, as many times as one follows another, and the rest goes to the
 * parser unchanged. Once a final status line has been seen nothing is looked at until the next
 * request head, so bodies are never searched, and the per-read cost is one property test.
 */
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';

/** An interim response's head longer than this (undici's default maxHeaderSize) is left to the parser. */
const MAX_INTERIM_BYTES = 16 * 1024;

/** `HTTP/1.` then the minor version digit and a space: the start of every HTTP/1.x status line. */
const STATUS_PREFIX = Buffer.from('HTTP/1.0 1', 'latin1');
/** Bytes needed to read the status code: `HTTP/1.1 1xx`. */
const STATUS_BYTES = 12;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** A request line as undici writes it (RFC 9112 §3: method SP request-target SP HTTP-version). */
const REQUEST_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^ \r\n]+ HTTP\/1\.[01]\r\n/;

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const isDigit = (byte: number | undefined): boolean =>
  byte !== undefined && byte >= DIGIT_0 && byte <= DIGIT_9;

/**
 * Where the response at the start of `data` stands: `final` (not an interim response, or cannot
 * become one), `incomplete` (could be an interim response whose end has not arrived), or the
 * offset just past the empty line that ends an interim response.
 */
function interimEnd(data: Buffer): number | 'final' | 'incomplete' {
  const known = Math.min(data.length, STATUS_BYTES);
  for (let i = 0; i < known; i += 1) {
    const byte = data[i];
    const ok =
      i === 7 || i === 10 || i === 11
        ? isDigit(byte) // minor version, second and third status digits
        : byte === STATUS_PREFIX[i];
    if (!ok) return 'final';
  }
  if (data.length < STATUS_BYTES) return 'incomplete';
  // 101 Switching Protocols is not interim for a connection that did not ask to upgrade.
  if (data[10] === DIGIT_0 && data[11] === DIGIT_0 + 1) return 'final';
  const end = data.indexOf(HEAD_END, STATUS_BYTES - 2);
  if (end >= 0) return end + HEAD_END.length;
  return data.length > MAX_INTERIM_BYTES ? 'final' : 'incomplete';
}

/** Per-connection state, see the module comment. */
class InterimFilter {
  /** The next bytes read start a response. */
  awaiting = false;
  /** Bytes of what may be an interim response, held until its end arrives. */
  held: Buffer | null = null;

  /** `chunk` less the interim responses at its start; null when nothing is left to hand on yet. */
  filter(chunk: Buffer): Buffer | null {
    let data = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
    this.held = null;
    for (;;) {
      const end = interimEnd(data);
      if (end === 'final') {
        this.awaiting = false;
        return data;
      }
      if (end === 'incomplete') {
        this.held = data;
        return null;
      }
      data = data.subarray(end);
      if (data.length === 0) return null;
    }
  }
}

/**
 * Makes `socket` (a connection undici is about to use for HTTP/1.1) drop interim responses before
 * its parser reads them (see the module comment). Overrides `read` and `write` on this socket only.
 */
export function skipInterimResponses(socket: Socket): void {
  const state = new InterimFilter();
  const read = socket.read;
  const write = socket.write;
  socket.read = function readSkippingInterim(this: Socket, size?: number) {
    const chunk = read.call(this, size) as Buffer | null;
    if (!state.awaiting || chunk === null) return chunk;
    return state.filter(chunk);
  };
  socket.write = function writeNotingRequests(this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (typeof chunk === 'string' && chunk.charCodeAt(0) !== 0x0d && REQUEST_LINE.test(chunk)) {
      state.awaiting = true;
      state.held = null;
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
}

/** `connector` whose every connection skips interim responses ({@link skipInterimResponses}). */
export function skippingInterimResponses(connector: buildConnector.connector): buildConnector.connector {
  return (options, callback) =>
    connector(options, (...args) => {
      // undici calls back with the socket on success, with the error alone on failure.
      const socket = args[1] as Socket | null | undefined;
      if (socket !== null && socket !== undefined) skipInterimResponses(socket);
      callback(...args);
    });
}
