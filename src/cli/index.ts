#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  clientCertificateIssued,
  clientCertificateRegistered,
  clientCertificateRevoked,
} from '../client-certificates/audit.js';
import { runPrimary } from '../cluster/cluster.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { identityCreated } from '../identities/audit.js';
import { createServices, openBackends, prepareDeployment, StartupError, startTwoway } from '../main.js';
import { mappingCreated } from '../mappings/audit.js';
import { createLogger } from '../shared/logger.js';
import type { RevocationReason } from '../store/types.js';
import { tenantCreated } from '../tenants/audit.js';

/**
 * `twoway`: `serve` runs the service; the other commands act on the same store directly (as
 * configured by TWOWAY_* / TWOWAY_CONFIG_FILE), so they work without a running server and a
 * running server picks their changes up within TWOWAY_CHANGE_POLL_INTERVAL_MS.
 */
const program = new Command('twoway').description('Multi-tenant mutual-TLS gateway and certificate service');

/** Runs `work` with the store and services open, and closes them afterwards. */
async function withServices<T>(
  work: (services: ReturnType<typeof createServices>) => Promise<T>,
): Promise<T> {
  const config = loadConfig();
  const backends = await openBackends(config);
  const services = createServices(backends, config);
  try {
    return await work(services);
  } finally {
    await services.parser.close();
    await backends.store.close();
    await backends.kms.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function readPassword(options: { password?: string; passwordFile?: string }): string | undefined {
  if (options.passwordFile) return readFileSync(options.passwordFile, 'utf8').replace(/\r?\n$/, '');
  return options.password ?? process.env.TWOWAY_IDENTITY_PASSWORD;
}

program
  .command('serve')
  .description('Run the HTTP API, the edge listener and the scheduler (TWOWAY_WORKERS processes)')
  .action(async () => {
    const config = loadConfig();
    if (config.workers > 1 && cluster.isPrimary) {
      // The primary only prepares the store and relays changes; the workers serve.
      const logger = createLogger(config.logLevel);
      await prepareDeployment(config, logger);
      runPrimary(config.workers, { log: (message) => logger.warn(message) });
      logger.info({ workers: config.workers }, 'twoway workers started');
      return;
    }
    const twoway = await startTwoway(config, { clusterWorker: cluster.isWorker });
    const stop = async () => {
      await twoway.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

const tenant = program.command('tenant').description('Tenants');
tenant
  .command('create')
  .description('Create a tenant; prints its first API key (shown once)')
  .requiredOption('--id <id>', 'tenant id, ^[a-z0-9][a-z0-9-]{1,62}$')
  .option('--name <name>', 'display name (default: the id)')
  .action(async (options: { id: string; name?: string }) => {
    if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(options.id))
      throw new AppError('bad_request', 'Invalid tenant id.');
    await withServices(async ({ tenants, audit }) => {
      const {
        tenant: created,
        apiKey,
        keyId,
      } = await tenants.createTenant(options.id, options.name ?? options.id);
      await audit.record(created.id, { actor: 'cli', ...tenantCreated(created, keyId) });
      print({ ...created, apiKey });
    });
  });

const identity = program.command('identity').description('Outbound client identities');
identity
  .command('import')
  .description('Import a PKCS#12 (.p12/.pfx) or PEM identity for a tenant')
  .requiredOption('--tenant <tenant>')
  .option('--file <path>', 'PKCS#12, or a PEM bundle with certificate, key and chain')
  .option('--cert <path>', 'PEM or DER leaf certificate')
  .option('--key <path>', 'PEM private key')
  .option('--chain <path>', 'PEM intermediates')
  .option('--name <name>', 'display name', 'identity')
  .addOption(new Option('--password <password>', 'PKCS#12 / key password (or TWOWAY_IDENTITY_PASSWORD)'))
  .option('--password-file <path>', 'read the password from a file')
  .action(
    async (options: {
      tenant: string;
      file?: string;
      cert?: string;
      key?: string;
      chain?: string;
      name: string;
      password?: string;
      passwordFile?: string;
    }) => {
      const password = readPassword(options);
      await withServices(async ({ tenants, identities, audit }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const view = await identities.importIdentity(options.tenant, options.name, {
          ...(options.file ? { file: readFileSync(options.file) } : {}),
          ...(options.cert ? { certificate: readFileSync(options.cert) } : {}),
          ...(options.key ? { privateKey: readFileSync(options.key) } : {}),
          ...(options.chain ? { chain: readFileSync(options.chain) } : {}),
          ...(password !== undefined ? { password } : {}),
        });
        await audit.record(options.tenant, { actor: 'cli', ...identityCreated(view) });
        print(view);
      });
    },
  );

identity
  .command('test')
  .description(
    'Try a certificate (a file, or a stored identity) against an https URL; stores nothing. ' +
      'Prints the report; exits 0 when the verdict is ok, 3 otherwise',
  )
  .requiredOption('--tenant <tenant>')
  .requiredOption('--url <url>', 'https URL to GET with the certificate')
  .option('--identity <id>', 'test a stored identity (its active version) instead of a file')
  .option('--file <path>', 'PKCS#12, or a PEM bundle with certificate, key and chain')
  .option('--cert <path>', 'PEM or DER leaf certificate')
  .option('--key <path>', 'PEM private key')
  .option('--chain <path>', 'PEM intermediates')
  .addOption(new Option('--password <password>', 'PKCS#12 / key password (or TWOWAY_IDENTITY_PASSWORD)'))
  .option('--password-file <path>', 'read the password from a file')
  .option('--trust-anchors <path>', 'PEM CA certificates that verify the server instead of the system roots')
  .option('--timeout-ms <ms>', 'give up after this long (at most TWOWAY_IDENTITY_TEST_TIMEOUT_MS)')
  .action(
    async (options: {
      tenant: string;
      url: string;
      identity?: string;
      file?: string;
      cert?: string;
      key?: string;
      chain?: string;
      password?: string;
      passwordFile?: string;
      trustAnchors?: string;
      timeoutMs?: string;
    }) => {
      const password = readPassword(options);
      const verdict = await withServices(async ({ tenants, tester }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const timeoutMs = options.timeoutMs === undefined ? undefined : Number(options.timeoutMs);
        if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 100))
          throw new AppError('bad_request', '--timeout-ms must be an integer of at least 100.');
        const report = await tester.test(options.tenant, {
          url: options.url,
          ...(options.identity ? { identityId: options.identity } : {}),
          upload: {
            ...(options.file ? { file: readFileSync(options.file) } : {}),
            ...(options.cert ? { certificate: readFileSync(options.cert) } : {}),
            ...(options.key ? { privateKey: readFileSync(options.key) } : {}),
            ...(options.chain ? { chain: readFileSync(options.chain) } : {}),
            ...(password !== undefined ? { password } : {}),
          },
          ...(options.trustAnchors ? { trustAnchorsPem: readFileSync(options.trustAnchors, 'utf8') } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        });
        print(report);
        return report.verdict;
      });
      if (verdict !== 'ok') process.exitCode = 3;
    },
  );

const mapping = program.command('mapping').description('Mappings (tenant, service, URL) → identity');
mapping
  .command('add')
  .description('Map a service URL to an identity')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--identity <id>', 'identity id')
  .option('--service <service>', 'api, webhooks, idp or a platform-defined name', 'api')
  .option('--url <url>', 'https URL (optional for --match any)')
  .addOption(
    new Option('--match <kind>', 'exact | prefix | any')
      .choices(['exact', 'prefix', 'any'])
      .default('prefix'),
  )
  .option('--name <name>', 'display name', 'mapping')
  .option(
    '--trust-anchors <path>',
    'PEM CA certificates that verify the remote server instead of the system roots',
  )
  .action(
    async (options: {
      tenant: string;
      identity: string;
      service: string;
      url?: string;
      match: 'exact' | 'prefix' | 'any';
      name: string;
      trustAnchors?: string;
    }) => {
      await withServices(async ({ tenants, mappings, audit }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const view = await mappings.create(options.tenant, {
          name: options.name,
          service: options.service,
          match: options.match,
          identityId: options.identity,
          ...(options.url ? { url: options.url } : {}),
          ...(options.trustAnchors ? { trustAnchorsPem: readFileSync(options.trustAnchors, 'utf8') } : {}),
        });
        await audit.record(options.tenant, { actor: 'cli', ...mappingCreated(view) });
        print(view);
      });
    },
  );

const clientCert = program
  .command('client-cert')
  .description('Inbound client certificates for the edge listener (public certificates only)');
clientCert
  .command('add')
  .description("Register a tenant's own client certificate (PEM or DER; never a private key)")
  .requiredOption('--tenant <tenant>')
  .requiredOption('--file <path>', 'PEM or DER certificate')
  .option('--name <name>', 'display name', 'client certificate')
  .action(async (options: { tenant: string; file: string; name: string }) => {
    await withServices(async ({ tenants, clientCertificates, audit }) => {
      if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
      const view = await clientCertificates.register(
        options.tenant,
        options.name,
        readFileSync(options.file),
      );
      await audit.record(options.tenant, { actor: 'cli', ...clientCertificateRegistered(view) });
      print(view);
    });
  });
clientCert
  .command('revoke')
  .description('Revoke a client certificate: the edge refuses it at once; an issued one is added to the CRL')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--id <id>', 'client certificate id (ccr_...)')
  .addOption(
    new Option('--reason <reason>', 'CRL reason code (RFC 5280 §5.3.1)')
      .choices(['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation'])
      .default('unspecified'),
  )
  .action(async (options: { tenant: string; id: string; reason: RevocationReason }) => {
    await withServices(async ({ ca, clientCertificates, audit }) => {
      await ca.ensure();
      const view = await clientCertificates.revoke(options.tenant, options.id, options.reason);
      await audit.record(options.tenant, { actor: 'cli', ...clientCertificateRevoked(view, options.reason) });
      print(view);
    });
  });

const csr = program.command('csr').description('Certificate signing requests for the platform CA');
csr
  .command('sign')
  .description('Issue a client certificate from a PKCS#10 CSR (clientAuth, URI SAN urn:twoway:tenant:<id>)')
  .requiredOption('--tenant <tenant>')
  .requiredOption('--csr <path>', 'PEM or DER CSR')
  .option('--name <name>', 'display name', 'client certificate')
  .option('--days <days>', 'validity in days (default TWOWAY_CLIENT_CERT_ISSUE_VALIDITY_DAYS)')
  .option('--out <path>', 'write the certificate (PEM) to this file')
  .option('--chain-out <path>', 'write the chain (issuing CA, root; PEM) to this file')
  .action(
    async (options: {
      tenant: string;
      csr: string;
      name: string;
      days?: string;
      out?: string;
      chainOut?: string;
    }) => {
      const days = options.days === undefined ? undefined : Number(options.days);
      if (days !== undefined && !Number.isInteger(days))
        throw new AppError('bad_request', '--days must be an integer.');
      await withServices(async ({ tenants, ca, clientCertificates, audit }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        await ca.ensure();
        const view = await clientCertificates.issue(
          options.tenant,
          options.name,
          readFileSync(options.csr),
          days,
        );
        await audit.record(options.tenant, { actor: 'cli', ...clientCertificateIssued(view) });
        if (options.out) writeFileSync(options.out, view.certificatePem);
        if (options.chainOut) writeFileSync(options.chainOut, view.chainPem);
        print(view);
      });
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StartupError)
    process.stderr.write(`twoway: ${err.message}\n`);
  else {
    const appError = toAppError(err);
    const detail = appError.code === 'internal_error' && err instanceof Error ? err.message : appError.detail;
    process.stderr.write(`twoway: ${appError.code}: ${detail}\n`);
  }
  process.exit(1);
});
