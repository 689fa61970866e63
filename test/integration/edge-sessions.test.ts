import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../fixtures/pki.js';
import { makeByoc } from '../helpers/edge-clients.js';
import { build, createTenant, type TestTwoway } from '../helpers/twoway.js';

interface Visit {
  status: number;
  body: string;
  reused: boolean;
  /** Session tickets received on this connection (Node's `session` event). */
  tickets: Buffer[];
}

/**
 * One TLS connection to the edge (optionally resuming `session`) that sends one request with
 * `Connection: close` and reads until the server closes.
 */
function visit(
  twoway: TestTwoway,
  client: { ca: string; cert: string; key: string },
  path: string,
  apiKey: string,
  session?: Buffer,
): Promise<Visit> {
  const url = new URL(twoway.edgeUrl);
  return new Promise((resolve, reject) => {
    const tickets: Buffer[] = [];
    const socket = tls.connect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      ...client,
      ...(session ? { session } : {}),
    });
    const chunks: Buffer[] = [];
    let reused = false;
    socket.on('session', (ticket: Buffer) => tickets.push(ticket));
    socket.once('secureConnect', () => {
      reused = socket.isSessionReused();
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${apiKey}\r\nConnection: close\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('error', reject);
    socket.once('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        body: split < 0 ? '' : text.slice(split + 4),
        reused,
        tickets,
      });
    });
  });
}

// Session tickets are a TLS-layer setting of the edge; the store plays no part (SQLite only).
describe.each<{ name: string; env: Record<string, string>; resumes: boolean }>([
  { name: 'tickets off (default)', env: {}, resumes: false },
  { name: 'TWOWAY_EDGE_SESSION_TICKETS=true', env: { TWOWAY_EDGE_SESSION_TICKETS: 'true' }, resumes: true },
])('edge TLS sessions, $name', ({ env, resumes }) => {
  const files = tempDir('twoway-edge-sessions-');
  const twoway = build({ env });
  let apiKey: string;
  let client: { ca: string; cert: string; key: string };
  let certificateId: string;
  const hello = '/v1/tenants/acme/mtls/hello';

  beforeAll(async () => {
    apiKey = await createTenant(twoway, 'acme', 'Acme');
    const byoc = await makeByoc(files.dir, 'laptop', 'acme-laptop');
    const registered = await twoway.call('/v1/tenants/acme/client-certificates', {
      method: 'POST',
      token: apiKey,
      json: { name: 'laptop', certificatePem: readFileSync(byoc.cert, 'utf8') },
    });
    expect(registered.status).toBe(201);
    certificateId = ((await registered.json()) as { id: string }).id;
    client = {
      ca: await (await fetch(`${twoway.url}/v1/ca/certificates`)).text(),
      cert: readFileSync(byoc.cert, 'utf8'),
      key: readFileSync(byoc.key, 'utf8'),
    };
  });

  afterAll(() => files.cleanup());

  test(
    resumes
      ? 'a second connection resumes and is still admitted'
      : 'no connection resumes; each one is admitted',
    async () => {
      const first = await visit(twoway, client, hello, apiKey);
      expect(first.status).toBe(200);
      expect(first.body).toBe('Hello, world!');
      expect(first.reused).toBe(false);
      // Without tickets, OpenSSL still sends TLS 1.3 session ids (SSL_OP_NO_TICKET means stateful
      // tickets) that the server never stores: the client tries them and gets a full handshake.
      expect(first.tickets.length).toBeGreaterThan(0);
      const second = await visit(twoway, client, hello, apiKey, first.tickets.at(-1));
      expect(second.status).toBe(200);
      expect(second.reused).toBe(resumes);
    },
  );

  test('a server certificate renewal keeps the ticket setting', async () => {
    const issued = await twoway.services.ca.issueServerCertificate(['localhost', '127.0.0.1'], 30);
    twoway.edge.listener.setCertificate(issued.certificatePem + issued.chainPem, issued.keyPem);
    const first = await visit(twoway, client, hello, apiKey);
    expect(first.status).toBe(200);
    expect(first.tickets.length).toBeGreaterThan(0);
    const second = await visit(twoway, client, hello, apiKey, first.tickets.at(-1));
    expect(second.status).toBe(200);
    expect(second.reused).toBe(resumes);
  });

  test('a connection after the certificate is deleted is refused, resumed or not', async () => {
    const first = await visit(twoway, client, hello, apiKey);
    expect(first.status).toBe(200);
    const deleted = await twoway.call(`/v1/tenants/acme/client-certificates/${certificateId}`, {
      method: 'DELETE',
      token: apiKey,
    });
    expect(deleted.status).toBe(204);
    const after = await visit(twoway, client, hello, apiKey, first.tickets.at(-1));
    expect(after.reused).toBe(resumes);
    expect(after.status).toBe(403);
    expect(JSON.parse(after.body)).toMatchObject({ code: 'client_certificate_unknown' });
  });
});
