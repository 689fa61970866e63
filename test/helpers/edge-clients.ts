/**
 * Clients for the edge listener as tenants use them: `curl --cert/--key`, `openssl`, and a raw TLS
 * socket that sends several HTTP/1.1 requests over one connection. Everything runs asynchronously:
 * the edge lives in the test process, so a blocking child (execFileSync) would deadlock it.
 * Server certificates are always verified (`--cacert`, `ca`), never `rejectUnauthorized: false`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';

/** Runs a command; resolves with its output and exit code (never rejects on a non-zero exit). */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, encoding: 'utf8', timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err && typeof (err as { code?: unknown }).code !== 'number') {
          reject(err);
          return;
        }
        resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs `openssl` in `cwd`; rejects with its stderr when it fails. */
export async function openssl(cwd: string, ...args: string[]): Promise<string> {
  const result = await run('openssl', args, { cwd });
  if (result.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/**
 * A self-signed client certificate exactly as tenants are told to make one (README):
 * `openssl req -x509 -newkey rsa:2048 -sha256 -days 365 -nodes -keyout <name>.key -out <name>.crt -subj /CN=<cn>`.
 */
export async function makeByoc(
  dir: string,
  name: string,
  cn: string,
): Promise<{ cert: string; key: string }> {
  await openssl(
    dir,
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-sha256',
    '-days',
    '365',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${cn}`,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/**
 * `openssl verify` of `cert` against the platform CA as written to `dir` (`root.pem` trusted,
 * `issuing.pem` untrusted), with `flags` (`-crl_check`, `-CRLfile f`, `-crl_download`, ...) before
 * the certificate; resolves with the exit code and output, never throws.
 */
export function verifyIssued(dir: string, cert: string, ...flags: string[]): ReturnType<typeof run> {
  return run('openssl', [
    'verify',
    ...flags,
    '-CAfile',
    join(dir, 'root.pem'),
    '-untrusted',
    join(dir, 'issuing.pem'),
    cert,
  ]);
}

/** A key and a CSR made by `openssl req -new` (EC P-256 unless `rsa` is given). */
export async function makeCsr(
  dir: string,
  name: string,
  subject: string,
  key: 'ec' | 'rsa' = 'ec',
): Promise<{ csr: string; key: string }> {
  const keyArgs =
    key === 'ec' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', 'rsa:2048'];
  await openssl(
    dir,
    'req',
    '-new',
    ...keyArgs,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  );
  return { csr: join(dir, `${name}.csr`), key: join(dir, `${name}.key`) };
}

/** What curl saw. `status` is 0 when no HTTP response came (TLS or connection failure). */
export interface CurlResult {
  status: number;
  body: string;
  headers: Record<string, string>;
  /** curl's exit code and error line. */
  code: number;
  stderr: string;
}

/** `curl --cacert <ca> [--cert --key] [-H Authorization] <url>` with extra headers. */
export async function curl(
  url: string,
  options: {
    ca: string;
    cert?: string;
    key?: string;
    apiKey?: string;
    headers?: string[];
    method?: string;
    /** Send the path as written (`--path-as-is`): curl otherwise removes `/../` and `/./` itself. */
    pathAsIs?: boolean;
    /** Offer h2 by ALPN (`--http2`); curl uses HTTP/1.1 when the server does not take it. */
    http2?: boolean;
  },
): Promise<CurlResult> {
  const args = ['-sS', '-i', '--cacert', options.ca, '--max-time', '10'];
  if (options.pathAsIs) args.push('--path-as-is');
  if (options.http2) args.push('--http2');
  if (options.cert) args.push('--cert', options.cert);
  if (options.key) args.push('--key', options.key);
  if (options.apiKey) args.push('-H', `Authorization: Bearer ${options.apiKey}`);
  for (const header of options.headers ?? []) args.push('-H', header);
  if (options.method) args.push('-X', options.method);
  args.push(url);
  const result = await run('curl', args);
  const text = result.stdout;
  const split = text.indexOf('\r\n\r\n');
  if (result.code !== 0 || split < 0) {
    return { status: 0, body: '', headers: {}, code: result.code, stderr: result.stderr };
  }
  const head = text.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/\S+ (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, body: text.slice(split + 4), headers, code: 0, stderr: result.stderr };
}

/** One HTTP/1.1 response read off a raw connection. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One TLS connection to the edge on which requests are written by hand, one after another, so a
 * test can show that several requests share the connection (keep-alive).
 */
export class RawEdgeConnection {
  readonly socket: tls.TLSSocket;
  #buffer = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: tls.TLSSocket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static connect(
    edgeUrl: string,
    options: { ca: string; cert: string; key: string },
  ): Promise<RawEdgeConnection> {
    const url = new URL(edgeUrl);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: url.hostname,
        port: Number(url.port),
        ca: options.ca,
        cert: options.cert,
        key: options.key,
        servername: 'localhost',
      });
      socket.once('secureConnect', () => resolve(new RawEdgeConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends `GET path` with the API key and reads the response (Content-Length framed). */
  async get(path: string, apiKey: string): Promise<RawResponse> {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${apiKey}\r\n\r\n`);
    for (;;) {
      const response = this.#take();
      if (response) return response;
      if (this.closed) throw new Error('connection closed before a response');
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter();
  }

  #take(): RawResponse | undefined {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const head = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (this.#buffer.length < end + 4 + length) return undefined;
    const body = this.#buffer.subarray(end + 4, end + 4 + length).toString('utf8');
    this.#buffer = this.#buffer.subarray(end + 4 + length);
    return { status: Number(head[0]?.split(' ')[1]), headers, body };
  }
}

/** What the platform upstream received. */
export interface UpstreamRequest {
  method: string;
  url: string;
  rawHeaders: string[];
  body: string;
}

/** A plain HTTP server standing in for the platform API: records requests, answers 200 JSON. */
export async function startPlatformUpstream(): Promise<{
  url: string;
  requests: UpstreamRequest[];
  server: Server;
  close(): Promise<void>;
}> {
  const requests: UpstreamRequest[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body });
      res.writeHead(200, { 'content-type': 'application/json', 'x-platform': 'yes' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Values of a header in raw header order (case-insensitive name). */
export function rawHeaderValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === name.toLowerCase()) out.push(rawHeaders[i + 1] ?? '');
  }
  return out;
}

/** Writes `text` to `dir/name` and returns the path. */
export function writeFile(dir: string, name: string, text: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
