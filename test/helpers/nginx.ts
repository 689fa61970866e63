import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { join } from 'node:path';

/** Path of the nginx binary, or undefined (CI installs it in .ci/run; missing there is a failure). */
export function findNginx(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx']) {
    if (existsSync(candidate)) return candidate;
  }
  if (process.env.CI) throw new Error('nginx is not installed; .ci/run must install it');
  console.warn('\n*** nginx not installed: the nginx tests are SKIPPED (apt-get install nginx) ***\n');
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RunningNginx {
  process: ChildProcess;
  /** The port it listens on (127.0.0.1). */
  port: number;
  close(): Promise<void>;
}

/**
 * Runs nginx in the foreground (`daemon off; master_process off;`) with `httpBlock` as the body of
 * its `http {}` block, all files in `dir`, and waits until `port` accepts connections.
 */
export async function startNginx(
  binary: string,
  dir: string,
  port: number,
  httpBlock: string,
): Promise<RunningNginx> {
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'])
    mkdirSync(join(dir, sub), { recursive: true });
  const conf = `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${httpBlock}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn(binary, ['-e', join(dir, 'error.log'), '-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += String(d);
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) {
      return {
        process: child,
        port,
        close: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const force = setTimeout(() => child.kill('SIGKILL'), 2_000);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '';
  throw new Error(`nginx did not start: ${stderr} ${log}`);
}

/**
 * nginx as a customer's mTLS server on a free port of 127.0.0.1: `serverPem` (certificate and
 * chain) and `serverKeyPem`, `ssl_verify_client on` trusting `clientCaPem` only, and `location` as the
 * body of `location / {}`. Files are written to `dir`.
 */
export async function startMtlsNginx(
  binary: string,
  dir: string,
  options: {
    serverPem: string;
    serverKeyPem: string;
    clientCaPem: string;
    verifyDepth: number;
    location: string;
  },
): Promise<RunningNginx> {
  writeFileSync(join(dir, 'server.pem'), options.serverPem);
  writeFileSync(join(dir, 'server.key'), options.serverKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, 'clients-ca.pem'), options.clientCaPem);
  const port = await freePort();
  return startNginx(
    binary,
    dir,
    port,
    `  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/server.pem;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/clients-ca.pem;
    ssl_verify_client on;
    ssl_verify_depth ${options.verifyDepth};
    client_max_body_size 16m;
    location / {
${options.location}
    }
  }`,
  );
}
