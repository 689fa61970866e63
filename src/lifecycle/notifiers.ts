/**
 * The two notification channels: e-mail over SMTP (nodemailer, TWOWAY_SMTP_URL) and signed webhook
 * POSTs (undici). Each send is one attempt; retries and their bookkeeping are the delivery worker's.
 */
import net from 'node:net';
import nodemailer from 'nodemailer';
import { Agent, request } from 'undici';
import { DESTINATION_BLOCKED, guardedLookup, isBlockedAddress } from '../net/address-guard.js';
import type { ExpiryEvent } from './scanner.js';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './signing.js';

/** The outcome of one attempt; `error` is short and safe to store (no secrets, no bodies). */
export interface SendResult {
  ok: boolean;
  statusCode?: number;
  error?: string;
  /** A failure that no retry can mend (no recipient left): the delivery is `failed` at once. */
  final?: boolean;
}

export interface EmailSender {
  send(to: string[], event: ExpiryEvent): Promise<SendResult>;
  close(): void;
}

export interface WebhookSender {
  send(
    url: string,
    event: ExpiryEvent,
    body: string,
    secret: string | undefined,
    now: Date,
  ): Promise<SendResult>;
  close(): Promise<void>;
}

/** Subject and plain-text body of an expiry e-mail. */
export function renderEmail(event: ExpiryEvent): { subject: string; text: string } {
  const d = event.data;
  const what = `${d.objectType.replaceAll('_', ' ')} "${d.name}"`;
  const subject =
    event.type === 'certificate.expired'
      ? `[Twoway] Certificate expired: ${what} (tenant ${event.tenant})`
      : `[Twoway] Certificate expires in ${d.daysLeft} day${d.daysLeft === 1 ? '' : 's'}: ${what} (tenant ${event.tenant})`;
  const text = [
    event.type === 'certificate.expired'
      ? `The certificate of ${what} in tenant ${event.tenant} has expired.`
      : `The certificate of ${what} in tenant ${event.tenant} expires in ${d.daysLeft} day(s).`,
    '',
    `Object:      ${d.objectType} ${d.objectId} (version ${d.objectVersion})`,
    `Subject:     ${d.subject}`,
    `Fingerprint: ${d.fingerprintSha256} (SHA-256)`,
    `Not after:   ${d.notAfter}`,
    '',
    d.objectType === 'identity'
      ? 'Upload a new version of the identity (it can be activated at once or at a chosen time).'
      : 'Register a replacement certificate before this one expires.',
    '',
    `Event id: ${event.id}`,
  ].join('\n');
  return { subject, text };
}

/** E-mail through the SMTP server at `smtpUrl` (smtp:// or smtps://, credentials in the URL). */
export function smtpEmailSender(options: { smtpUrl: string; from: string; timeoutMs: number }): EmailSender {
  const transport = nodemailer.createTransport({
    url: options.smtpUrl,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    async send(to, event) {
      const { subject, text } = renderEmail(event);
      try {
        const info = (await transport.sendMail({
          from: options.from,
          to,
          subject,
          text,
          headers: { [EVENT_ID_HEADER]: event.id },
        })) as { response?: string };
        const code = Number(/^(\d{3})/.exec(info.response ?? '')?.[1]);
        return { ok: true, ...(Number.isFinite(code) ? { statusCode: code } : {}) };
      } catch (err) {
        const e = err as { responseCode?: number; code?: string; message?: string };
        return {
          ok: false,
          ...(typeof e.responseCode === 'number' ? { statusCode: e.responseCode } : {}),
          // nodemailer messages name the server and the SMTP reply, never the URL's password.
          error: `smtp: ${e.code ?? 'error'}${e.responseCode ? ` ${e.responseCode}` : ''}`,
        };
      }
    },
    close() {
      transport.close();
    },
  };
}

/**
 * Webhook POSTs through one undici Agent whose connections go through the forward SSRF guard
 * (guardedLookup: every resolved address checked, unless `allowPrivate`). Redirects are not
 * followed; any 2xx counts as delivered.
 */
export function undiciWebhookSender(options: { allowPrivate: boolean; timeoutMs: number }): WebhookSender {
  const agent = new Agent({
    connect: {
      lookup: guardedLookup(options.allowPrivate),
      timeout: options.timeoutMs,
      rejectUnauthorized: true,
    },
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  return {
    async send(rawUrl, event, body, secret, now) {
      const url = new URL(rawUrl);
      const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      if (!options.allowPrivate && net.isIP(host) !== 0 && isBlockedAddress(host)) {
        return { ok: false, error: 'destination blocked' };
      }
      const timestamp = Math.floor(now.getTime() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'twoway-webhooks',
        [EVENT_ID_HEADER]: event.id,
        [TIMESTAMP_HEADER]: String(timestamp),
      };
      if (secret) headers[SIGNATURE_HEADER] = signWebhook(secret, timestamp, body);
      try {
        const response = await request(url, { method: 'POST', headers, body, dispatcher: agent });
        await response.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        const ok = response.statusCode >= 200 && response.statusCode < 300;
        return ok
          ? { ok, statusCode: response.statusCode }
          : { ok, statusCode: response.statusCode, error: `HTTP ${response.statusCode}` };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === DESTINATION_BLOCKED) return { ok: false, error: 'destination blocked' };
        return { ok: false, error: code ?? 'request failed' };
      }
    },
    close() {
      return agent.close();
    },
  };
}
