/**
 * One undici Agent per forward credential (identity version + trust anchors).
 *
 * Why not one shared Agent: an Agent cannot vary the client certificate per request
 * (nodejs/undici#3979), and undici keys its TLS session cache by server name only, so a shared
 * connector could resume one tenant's session, and with it that tenant's client certificate, for
 * another (FIELD-NOTES "One dispatcher per credential"). Keying by version is what makes rotation
 * rotate: Kong keyed its pool by certificate record and kept presenting the old certificate after an
 * update (Kong/kong#13992); here a new version gets a new key, hence a new Agent, and the old Agent
 * drains and closes.
 */
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import { AppError } from '../errors/app-error.js';
import { guardedLookup } from '../net/address-guard.js';
import { skippingInterimResponses } from './interim-responses.js';

/** What a forward presents and trusts. */
export interface ForwardCredential {
  /**
   * Unique per identity version + trust anchors, e.g.
   * `${tenantId}/${identityId}@${version}#${trustAnchorsSha256}`. Two credentials with the same key
   * share an Agent (and its connections and TLS sessions), so the key must change whenever the
   * certificate, key or trust anchors do.
   */
  key: string;
  /**
   * Built once by the caller with `tls.createSecureContext({ key, cert, ca? })` (`ca` = the mapping's
   * trust anchors, else system roots). Passing `key`/`cert`/`ca` to the Agent instead would build a
   * new context for every connection, about 0.95 ms each (FIELD-NOTES "Build each TLS context once").
   */
  secureContext: SecureContext;
}

/** Timeouts of the upstream side of a forward, all in milliseconds. */
export interface ForwardTimeouts {
  /** TCP connect plus TLS handshake (undici clears it on `secureConnect`). */
  connectTimeoutMs: number;
  /** From request sent to the last response header received. */
  headersTimeoutMs: number;
  /** Longest gap between two response body chunks; not counted while the client applies backpressure. */
  bodyTimeoutMs: number;
  /** How long an idle keep-alive connection stays open; caps a longer `Keep-Alive: timeout` hint from the server. */
  idleTimeoutMs: number;
}

/** A leased dispatcher: call `release()` exactly once when the forward has settled. */
export interface DispatcherLease {
  readonly dispatcher: Dispatcher;
  release(): void;
}

/** Most TLS sessions kept per credential, one per upstream host and port (undici's default count). */
export const MAX_SESSIONS_PER_CREDENTIAL = 100;

/** undici's connector as implemented (lib/core/connect.js): it returns the socket it creates. */
type SocketConnector = (options: buildConnector.Options, callback: buildConnector.Callback) => Socket;

/**
 * undici's own connector (`buildConnector`: TCP or TLS connect, connect timeout, TCP keep-alive,
 * ALPN), with a TLS session cache that keeps its sessions, so a new connection to an upstream this
 * credential has talked to resumes (RFC 8446 §2.2) instead of doing a full handshake with a
 * signature by the client key.
 *
 * Why not undici's cache: it holds sessions through WeakRefs, so any garbage collection may drop
 * them, and it lives in the per-origin Pool, which the Agent closes whenever that origin's last
 * connection closes. Measured against an upstream that closes every connection (`npm run bench`,
 * forward-handshakes), only 36% of undici's reconnects resumed; nginx's and HAProxy's all did.
 *
 * One cache per credential (its Agent), keyed by `hostname:port`, at most
 * {@link MAX_SESSIONS_PER_CREDENTIAL} entries (the oldest goes first): a session, and with it the
 * client certificate it was made with, is never offered for another credential. The latest session
 * received for a key replaces the one before. An offered session is dropped when the server
 * declines it (the handshake is then a full one) or when the connection fails before its
 * handshake completed. A session that resumed is kept and offered again, as nginx's
 * `proxy_ssl_session_reuse` does. undici's `session` option takes one session per connector, so a
 * resumed connection gets a connector of its own: a small cost beside the handshake it saves.
 */
function resumingConnector(options: buildConnector.BuildOptions): buildConnector.connector {
  const sessions = new Map<string, Buffer>();
  const fresh = buildConnector({ ...options, maxCachedSessions: 0 }) as unknown as SocketConnector;
  return (target, callback) => {
    const key = `${target.hostname}:${target.port}`;
    const session = sessions.get(key);
    const connect =
      session === undefined
        ? fresh
        : (buildConnector({ ...options, maxCachedSessions: 0, session }) as unknown as SocketConnector);
    const socket = connect(target, callback) as TLSSocket;
    if (session !== undefined) {
      const forget = (): void => {
        if (sessions.get(key) === session) sessions.delete(key);
      };
      // A failure before the handshake completed drops the session; a later error does not:
      // undici ends every connection the server closes (`Connection: close`) by destroying it
      // with an error.
      socket.once('error', forget);
      socket.once('secureConnect', () => {
        socket.off('error', forget);
        // The server declined it (a full handshake took place): it will not take it later either.
        if (!socket.isSessionReused()) forget();
      });
    }
    socket.on('session', (received: Buffer) => {
      sessions.delete(key);
      if (sessions.size >= MAX_SESSIONS_PER_CREDENTIAL) {
        const oldest = sessions.keys().next();
        if (oldest.done !== true) sessions.delete(oldest.value);
      }
      sessions.set(key, received);
    });
  };
}

/** Default for {@link DispatcherCache} `idleAgentTtlMs`: 5 minutes. */
export const DEFAULT_IDLE_AGENT_TTL_MS = 300_000;

/**
 * One cached Agent. It is also the lease handed out, so a lease costs no allocation on the hot path;
 * the price is that a double `release()` cannot be told from two releases (the count is clamped at 0).
 */
class Entry implements DispatcherLease {
  inFlight = 0;
  retired = false;
  /** Leased since the last idle sweep. */
  used = true;
  closed: Promise<void> | null = null;

  constructor(
    readonly key: string,
    readonly dispatcher: Agent,
    private readonly draining: Set<Entry>,
  ) {}

  release(): void {
    if (this.inFlight > 0) this.inFlight -= 1;
    if (this.inFlight === 0 && this.retired) void this.close();
  }

  close(): Promise<void> {
    if (this.closed === null) {
      this.draining.delete(this);
      // Graceful: undici lets queued and running requests finish before the sockets close.
      this.closed = this.dispatcher.close().catch(() => undefined);
    }
    return this.closed;
  }
}

/**
 * One undici Agent per credential key; per-origin pools with keep-alive live inside each Agent, and
 * so does the credential's TLS session cache ({@link resumingConnector}).
 *
 * - `lease(credential)` returns the current Agent for `credential.key` (creating it on first use) and
 *   counts the lease as in flight until `release()`.
 * - `retire(key)` marks the Agent superseded (rotation, new trust anchors, deletion): new leases for
 *   that key get a fresh Agent; the old one closes gracefully once its in-flight count reaches zero.
 * - Agents not leased for `idleAgentTtlMs` (default 5 min; 0 disables) are closed, so memory and
 *   sockets follow active tenants. The sweep runs every `idleAgentTtlMs`, so an idle Agent closes
 *   between one and two TTLs after its last use.
 *
 * Every Agent connects through {@link resumingConnector} with `{ secureContext, lookup:
 * guardedLookup(allowPrivate), timeout: connectTimeoutMs, rejectUnauthorized: true }`: undici's
 * connector (lib/core/connect.js, 7.x) spreads these options into `tls.connect`, so server
 * verification is never disabled and the post-DNS address check runs on every new connection; and
 * every connection skips unsolicited interim responses (interim-responses.ts).
 */
export class DispatcherCache {
  readonly #current = new Map<string, Entry>();
  readonly #draining = new Set<Entry>();
  readonly #agentOptions: Omit<Agent.Options, 'connect'>;
  readonly #lookup: ReturnType<typeof guardedLookup>;
  readonly #connectTimeoutMs: number;
  readonly #sweeper: NodeJS.Timeout | null;
  readonly #idleListeners: ((key: string) => void)[] = [];
  #closed = false;

  /**
   * @param options.timeouts upstream timeouts in ms, see {@link ForwardTimeouts}.
   * @param options.allowPrivate `forwardAllowPrivate`: when true, loopback/private destinations are allowed.
   * @param options.idleAgentTtlMs close Agents unused this long (ms); default {@link DEFAULT_IDLE_AGENT_TTL_MS}, 0 never.
   */
  constructor(options: { timeouts: ForwardTimeouts; allowPrivate: boolean; idleAgentTtlMs?: number }) {
    const { timeouts } = options;
    this.#lookup = guardedLookup(options.allowPrivate);
    this.#connectTimeoutMs = timeouts.connectTimeoutMs;
    this.#agentOptions = {
      headersTimeout: timeouts.headersTimeoutMs,
      bodyTimeout: timeouts.bodyTimeoutMs,
      keepAliveTimeout: timeouts.idleTimeoutMs,
      keepAliveMaxTimeout: timeouts.idleTimeoutMs,
      // Stay on HTTP/1.1: one request per connection at a time keeps the client-to-upstream
      // backpressure simple and matches what the benchmarked nginx setup does.
      allowH2: false,
    };
    const ttlMs = options.idleAgentTtlMs ?? DEFAULT_IDLE_AGENT_TTL_MS;
    if (ttlMs > 0) {
      this.#sweeper = setInterval(() => this.#sweep(), ttlMs);
      this.#sweeper.unref();
    } else {
      this.#sweeper = null;
    }
  }

  /**
   * The Agent for `credential.key`, counted as in flight until `release()` is called (exactly once,
   * when the forward settled).
   * @throws AppError `not_ready` after {@link close}.
   */
  lease(credential: ForwardCredential): DispatcherLease {
    let entry = this.#current.get(credential.key);
    if (entry === undefined) {
      if (this.#closed) throw new AppError('not_ready', 'The forward path is shutting down.');
      entry = new Entry(credential.key, this.#newAgent(credential.secureContext), this.#draining);
      this.#current.set(credential.key, entry);
    }
    entry.inFlight += 1;
    entry.used = true;
    return entry;
  }

  /** Marks the Agent of `key` superseded: the next lease gets a new Agent; this one closes when drained. */
  retire(key: string): void {
    const entry = this.#current.get(key);
    if (entry !== undefined) this.#retireEntry(entry);
  }

  /** Retires every key that starts with `prefix` (e.g. `${tenantId}/${identityId}@` for all versions of an identity). */
  retirePrefix(prefix: string): void {
    for (const entry of [...this.#current.values()]) {
      if (entry.key.startsWith(prefix)) this.#retireEntry(entry);
    }
  }

  /**
   * Calls `listener` with the key of each Agent the idle sweep closed, so what was built for that
   * credential (its TLS context) can go too and memory follows the active tenants. Runs
   * synchronously inside the sweep timer; an exception from a listener is caught and ignored, so the
   * sweep always completes.
   */
  onIdleClose(listener: (key: string) => void): void {
    this.#idleListeners.push(listener);
  }

  /** Number of current (not retired) Agents, one per credential key in use. */
  get size(): number {
    return this.#current.size;
  }

  /** Number of retired Agents still finishing in-flight requests. */
  get drainingCount(): number {
    return this.#draining.size;
  }

  /** Stops the idle sweep and closes every Agent gracefully (in-flight requests finish first). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    const closing: Promise<void>[] = [];
    for (const entry of this.#current.values()) closing.push(entry.close());
    for (const entry of this.#draining) closing.push(entry.close());
    this.#current.clear();
    await Promise.all(closing);
  }

  #retireEntry(entry: Entry): void {
    this.#current.delete(entry.key);
    entry.retired = true;
    if (entry.inFlight === 0) {
      void entry.close();
    } else {
      this.#draining.add(entry);
    }
  }

  #sweep(): void {
    for (const entry of [...this.#current.values()]) {
      if (entry.inFlight === 0 && !entry.used) {
        this.#current.delete(entry.key);
        void entry.close();
        for (const listener of this.#idleListeners) {
          try {
            listener(entry.key);
          } catch {
            // A listener's failure must not stop the sweep (it runs in a timer).
          }
        }
      } else {
        entry.used = false;
      }
    }
  }

  #newAgent(secureContext: SecureContext): Agent {
    return new Agent({
      ...this.#agentOptions,
      connect: skippingInterimResponses(
        resumingConnector({
          secureContext,
          lookup: this.#lookup,
          timeout: this.#connectTimeoutMs,
          // The default, stated so that no spread of options above can turn it off.
          rejectUnauthorized: true,
        }),
      ),
    });
  }
}
