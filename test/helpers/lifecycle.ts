/**
 * Helpers for the lifecycle suites: a clock the test moves by hand, a real SMTP server
 * (smtp-server), a webhook receiver that can fail on purpose, and a database snapshot (revision,
 * row count of every table, files of the data folder) to prove that something changed nothing.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import type { Clock } from '../../src/shared/clock.js';
import type { TestTwoway } from './twoway.js';

export { DAY_MS as DAY } from '../../src/certificates/index.js';

/** A clock the test moves by hand; nothing sleeps. */
export class ManualClock implements Clock {
  #at: number;
  constructor(at: number = Date.now()) {
    this.#at = at;
  }
  now(): Date {
    return new Date(this.#at);
  }
  advance(ms: number): void {
    this.#at += ms;
  }
}

/** One message the SMTP server accepted. */
export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  subject: string;
}

export interface SmtpSink {
  url: string;
  messages: ReceivedMail[];
  close(): Promise<void>;
}

/**
 * A real SMTP server on 127.0.0.1 (no TLS, no auth) that keeps every message it accepts. With
 * `failTimes`, the first that many messages are refused with `451` (try again later) and not kept.
 */
export async function startSmtpSink(options: { failTimes?: number } = {}): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  let failures = options.failTimes ?? 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (failures > 0) {
          failures -= 1;
          callback(Object.assign(new Error('try again later'), { responseCode: 451 }));
          return;
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          subject: decodeHeader(/^Subject: (.*(?:\r?\n[ \t].*)*)/m.exec(raw)?.[1] ?? ''),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** One POST the webhook receiver got. */
export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: Buffer;
  status: number;
  /** Whether the signature checked out against the receiver's secret (undefined: no secret known yet). */
  verified?: boolean;
}

export interface WebhookReceiver {
  url: string;
  requests: ReceivedWebhook[];
  close(): Promise<void>;
}

/**
 * Checks a webhook as a receiver following the README would, written here from the documented
 * recipe (not with the product's helper): HMAC-SHA256 keyed with the secret over
 * `<Twoway-Timestamp>.<raw body>`, compared in constant time with `Twoway-Signature: v1=<hex>`.
 */
export function receiverVerifies(secret: string, headers: IncomingHttpHeaders, body: Buffer): boolean {
  const timestamp = headers['twoway-timestamp'];
  const signature = headers['twoway-signature'];
  if (typeof timestamp !== 'string' || typeof signature !== 'string') return false;
  const mac = createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
  const expected = Buffer.from(`v1=${mac}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * An HTTP receiver on 127.0.0.1 that answers 500 to the first `failTimes` POSTs, then 204. With
 * `secret`, it verifies each signature ({@link receiverVerifies}) and answers 401 to a bad one.
 */
export async function startWebhookReceiver(
  options: { failTimes?: number; secret?: () => string | undefined } = {},
): Promise<WebhookReceiver> {
  const requests: ReceivedWebhook[] = [];
  let failures = options.failTimes ?? 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const secret = options.secret?.();
      const verified = secret === undefined ? undefined : receiverVerifies(secret, req.headers, body);
      let status = failures > 0 ? 500 : 204;
      if (verified === false) status = 401;
      else if (failures > 0) failures -= 1;
      requests.push({ headers: req.headers, body, status, ...(verified !== undefined ? { verified } : {}) });
      res.writeHead(status).end(status === 500 ? 'try again' : undefined);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/twoway`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Decodes an unfolded header value with RFC 2047 encoded-words (`=?UTF-8?Q?...?=`, `?B?`). */
function decodeHeader(value: string): string {
  return value
    .replace(/\r?\n[ \t]/g, ' ')
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(
      /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g,
      (_all, _charset: string, encoding: string, text: string) => {
        if (encoding.toUpperCase() === 'B') return Buffer.from(text, 'base64').toString('utf8');
        const bytes = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => `%${hex}`);
        return decodeURIComponent(bytes);
      },
    );
}

/** What "the database is unchanged" compares: revision, rows per table, files in the data folder. */
export interface DatabaseSnapshot {
  revision: number;
  rows: Record<string, number>;
  files: string[];
}

/**
 * Counts the rows of every table of the instance's database (SQLite file in its data folder, or
 * its PostgreSQL schema), with the store revision and the data folder's file names.
 */
export async function snapshotDatabase(twoway: TestTwoway & { dataDir: string }): Promise<DatabaseSnapshot> {
  const revision = await twoway.store.getRevision();
  const dataDir = twoway.config.dataDir;
  const files = readdirSync(dataDir).sort();
  const rows: Record<string, number> = {};
  if (twoway.config.databaseUrl === undefined) {
    const db = new Database(join(dataDir, 'twoway.db'), { readonly: true, fileMustExist: true });
    try {
      const tables = db
        .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        .all() as { name: string }[];
      for (const { name } of tables) {
        rows[name] = (db.prepare(`select count(*) as n from "${name}"`).get() as { n: number }).n;
      }
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: twoway.config.databaseUrl });
    await client.connect();
    try {
      const { rows: tables } = await client.query<{ name: string }>(
        'select table_name as name from information_schema.tables where table_schema = current_schema()',
      );
      for (const { name } of tables) {
        const { rows: count } = await client.query<{ n: string }>(`select count(*) as n from "${name}"`);
        rows[name] = Number(count[0]?.n ?? 0);
      }
    } finally {
      await client.end();
    }
  }
  return { revision, rows, files };
}
