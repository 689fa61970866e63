/**
 * TWOWAY_CSR_APPROVAL=manual (issue 16, item 7): a CSR answers 202 pending, the operator approves or
 * rejects it, and the tenant hears of the decision by e-mail and signed webhook; on SQLite and
 * PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tempDir } from '../fixtures/pki.js';
import { appBackends } from '../helpers/backends.js';
import { curl, makeCsr, openssl, writeFile } from '../helpers/edge-clients.js';
import {
  type SmtpSink,
  startSmtpSink,
  startWebhookReceiver,
  type WebhookReceiver,
} from '../helpers/lifecycle.js';
import { build, createTenant } from '../helpers/twoway.js';

const backends = await appBackends();

interface CsrView {
  id: string;
  status: string;
  subject: string;
  clientCertificateId?: string;
  reason?: string;
}

describe.each(backends)('CSR approval by the operator on $name', (backend) => {
  const files = tempDir('twoway-csr-approval-');
  let smtp: SmtpSink;
  let hooks: WebhookReceiver;
  let secret: string | undefined;
  let keyA: string;
  let keyB: string;
  let caFile: string;
  const twoway = build({
    backend,
    env: async () => {
      smtp = await startSmtpSink();
      hooks = await startWebhookReceiver({ secret: () => secret });
      return { TWOWAY_CSR_APPROVAL: 'manual', TWOWAY_SMTP_URL: smtp.url };
    },
  });

  beforeAll(async () => {
    keyA = await createTenant(twoway, 'org-a');
    keyB = await createTenant(twoway, 'org-b');
    const put = await twoway.call('/v1/tenants/org-a/notification-settings', {
      method: 'PUT',
      json: { emails: ['pki@org-a.example'], webhookUrls: [hooks.url] },
    });
    secret = ((await put.json()) as { webhookSecret: string }).webhookSecret;
    caFile = writeFile(files.dir, 'ca.pem', await (await fetch(`${twoway.url}/v1/ca/certificates`)).text());
  });
  afterAll(async () => {
    await hooks.close();
    await smtp.close();
    files.cleanup();
  });

  /** Submits an `openssl req -new` CSR as tenant A. */
  async function submit(name: string): Promise<{ response: Response; key: string }> {
    const made = await makeCsr(files.dir, name, `/CN=${name}`);
    const response = await twoway.call('/v1/tenants/org-a/certificate-signing-requests', {
      method: 'POST',
      token: keyA,
      json: { name, csrPem: readFileSync(made.csr, 'utf8') },
    });
    return { response, key: made.key };
  }

  test('a CSR waits as pending; approved, the certificate is issued, admitted at the edge, and the tenant told', async () => {
    const { response, key } = await submit('laptop');
    expect(response.status).toBe(202);
    const pending = (await response.json()) as CsrView;
    expect(pending).toMatchObject({ status: 'pending', subject: 'CN=laptop' });
    expect(JSON.stringify(pending)).not.toContain('certificatePem');
    const polled = await twoway.call(`/v1/tenants/org-a/certificate-signing-requests/${pending.id}`, {
      token: keyA,
    });
    expect(((await polled.json()) as CsrView).status).toBe('pending');
    // Nothing issued yet.
    const listed = (await (
      await twoway.call('/v1/tenants/org-a/client-certificates', { token: keyA })
    ).json()) as {
      items: unknown[];
    };
    expect(listed.items).toHaveLength(0);

    // The tenant cannot approve its own CSR; another tenant cannot see it.
    const self = await twoway.call(`/v1/tenants/org-a/certificate-signing-requests/${pending.id}/approve`, {
      method: 'POST',
      token: keyA,
    });
    expect(self.status).toBe(403);
    expect(((await self.json()) as { code: string }).code).toBe('operator_only');
    for (const path of ['', '/approve', '/reject']) {
      // Tenant B in its own tenant: no such CSR to read, and no decision a key may make.
      const foreign = await twoway.call(
        `/v1/tenants/org-b/certificate-signing-requests/${pending.id}${path}`,
        {
          method: path ? 'POST' : 'GET',
          token: keyB,
        },
      );
      expect(foreign.status, path).toBe(path ? 403 : 404);
      const wrongTenant = await twoway.call(
        `/v1/tenants/org-b/certificate-signing-requests/${pending.id}${path}`,
        {
          method: path ? 'POST' : 'GET',
        },
      );
      expect(wrongTenant.status, `operator ${path}`).toBe(404);
      const otherTenantsPath = await twoway.call(
        `/v1/tenants/org-a/certificate-signing-requests/${pending.id}${path}`,
        {
          method: path ? 'POST' : 'GET',
          token: keyB,
        },
      );
      expect(otherTenantsPath.status, `key B on org-a ${path}`).toBe(404);
    }

    const approved = await twoway.call(
      `/v1/tenants/org-a/certificate-signing-requests/${pending.id}/approve`,
      {
        method: 'POST',
      },
    );
    expect(approved.status).toBe(200);
    const issued = (await approved.json()) as {
      id: string;
      certificatePem: string;
      chainPem: string;
      source: string;
    };
    expect(issued.source).toBe('issued');
    const again = await twoway.call(`/v1/tenants/org-a/certificate-signing-requests/${pending.id}/approve`, {
      method: 'POST',
    });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { code: string }).code).toBe('csr_not_pending');
    const decided = (await (
      await twoway.call(`/v1/tenants/org-a/certificate-signing-requests/${pending.id}`, { token: keyA })
    ).json()) as CsrView;
    expect(decided).toMatchObject({ status: 'approved', clientCertificateId: issued.id });

    // The issued certificate works at the edge.
    const cert = writeFile(files.dir, 'laptop.crt', issued.certificatePem);
    const hello = await curl(`${twoway.edgeUrl}/v1/tenants/org-a/mtls/hello`, { ca: caFile, cert, key });
    expect(hello.status).toBe(200);

    await twoway.lifecycle.scheduler.runDue();
    await expect.poll(() => smtp.messages.length).toBe(1);
    expect(smtp.messages[0]?.subject).toBe(
      '[Twoway] Certificate signing request approved: "laptop" (tenant org-a)',
    );
    expect(smtp.messages[0]?.to).toEqual(['pki@org-a.example']);
    await expect.poll(() => hooks.requests.length).toBe(1);
    const webhook = hooks.requests[0];
    expect(webhook?.verified).toBe(true);
    expect(JSON.parse(webhook?.body.toString() ?? '{}')).toMatchObject({
      type: 'certificate_signing_request.approved',
      tenant: 'org-a',
      data: { objectId: pending.id, clientCertificateId: issued.id },
    });
    await openssl(files.dir, 'x509', '-in', cert, '-noout');
  });

  test('rejected: nothing is issued, the reason reaches the tenant; a decided CSR stays decided', async () => {
    const { response } = await submit('rejected-one');
    const pending = (await response.json()) as CsrView;
    const mailsBefore = smtp.messages.length;
    const hooksBefore = hooks.requests.length;
    const rejected = await twoway.call(
      `/v1/tenants/org-a/certificate-signing-requests/${pending.id}/reject`,
      {
        method: 'POST',
        json: { reason: 'Use the fleet CA' },
      },
    );
    expect(rejected.status).toBe(200);
    expect(await rejected.json()).toMatchObject({ status: 'rejected', reason: 'Use the fleet CA' });
    const approve = await twoway.call(
      `/v1/tenants/org-a/certificate-signing-requests/${pending.id}/approve`,
      {
        method: 'POST',
      },
    );
    expect(approve.status).toBe(409);
    const listed = (await (
      await twoway.call('/v1/tenants/org-a/client-certificates', { token: keyA })
    ).json()) as {
      items: { name: string }[];
    };
    expect(listed.items.map((c) => c.name)).not.toContain('rejected-one');

    await twoway.lifecycle.scheduler.runDue();
    await expect.poll(() => smtp.messages.length).toBe(mailsBefore + 1);
    expect(smtp.messages.at(-1)?.raw).toContain('Use the fleet CA');
    await expect.poll(() => hooks.requests.length).toBe(hooksBefore + 1);
    expect(JSON.parse(hooks.requests.at(-1)?.body.toString() ?? '{}')).toMatchObject({
      type: 'certificate_signing_request.rejected',
      data: { objectId: pending.id, reason: 'Use the fleet CA' },
    });
    const audit = (await (await twoway.call('/v1/tenants/org-a/audit-events')).json()) as {
      items: { action: string; objectId: string }[];
    };
    expect(audit.items.filter((e) => e.objectId === pending.id).map((e) => e.action)).toEqual(
      expect.arrayContaining(['certificate_signing_request.submit', 'certificate_signing_request.reject']),
    );
  });

  test('bad input: an invalid CSR is refused before it waits; unknown ids and bad reject bodies change nothing', async () => {
    const bad = await twoway.call('/v1/tenants/org-a/certificate-signing-requests', {
      method: 'POST',
      token: keyA,
      json: { csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' },
    });
    expect(bad.status).toBe(422);
    expect(((await bad.json()) as { code: string }).code).toBe('invalid_csr');
    const tooLong = await twoway.call('/v1/tenants/org-a/certificate-signing-requests', {
      method: 'POST',
      token: keyA,
      json: { csrPem: readFileSync(`${files.dir}/laptop.csr`, 'utf8'), validityDays: 100_000 },
    });
    expect(((await tooLong.json()) as { code: string }).code).toBe('validity_too_long');
    for (const path of ['/csr_nope', '/csr_nope/approve', '/csr_nope/reject']) {
      const missing = await twoway.call(`/v1/tenants/org-a/certificate-signing-requests${path}`, {
        method: path.includes('/', 1) ? 'POST' : 'GET',
      });
      expect(missing.status, path).toBe(404);
    }
    const { response } = await submit('bad-bodies');
    const pending = (await response.json()) as CsrView;
    for (const json of [{ reason: '' }, { reason: 'x'.repeat(501) }, { other: 'x' }]) {
      const refused = await twoway.call(
        `/v1/tenants/org-a/certificate-signing-requests/${pending.id}/reject`,
        {
          method: 'POST',
          json,
        },
      );
      expect(refused.status, JSON.stringify(json)).toBe(400);
    }
    const still = await twoway.call(`/v1/tenants/org-a/certificate-signing-requests/${pending.id}`);
    expect(((await still.json()) as CsrView).status).toBe('pending');
  });
});
