#!/usr/bin/env node
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { type IdentityUpload, isCertificateError } from '../certificates/index.js';
import {
  clientCertificateIssued,
  clientCertificateRegistered,
  clientCertificateRevoked,
} from '../client-certificates/audit.js';
import { runPrimary } from '../cluster/cluster.js';
import { type Config, ConfigError, loadConfig } from '../config/config.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { identityCreated } from '../identities/audit.js';
import { createServices, openBackends, prepareDeployment, StartupError, startTwoway } from '../main.js';
import { mappingCreated } from '../mappings/audit.js';
import { createLogger } from '../shared/logger.js';
import type { RevocationReason } from '../store/index.js';
import { tenantCreated } from '../tenants/audit.js';
import { TENANT_ID_PATTERN } from '../tenants/service.js';
import { connectionCommands } from './connection.js';
import { registerCustodyCommands } from './custody.js';
import { type PasswordOptions, readInput, readPassword, UsageError } from './input.js';
import { registerPeopleCommands } from './people.js';

/**
 * `twoway`: `serve` runs the service; the other commands act on the same store directly (as
 * configured by TWOWAY_* / TWOWAY_CONFIG_FILE), so they work without a running server and a
 * running server picks their changes up within TWOWAY_CHANGE_POLL_INTERVAL_MS.
 */
const program = new Command('twoway')
  .description('Multi-tenant mutual-TLS gateway and certificate service')
  // Usage errors are thrown, not exited on, so that they leave with status 2 (see the end).
  .exitOverride()
  .option('--data-dir <dir>', 'data folder (SQLite file, local key file); overrides TWOWAY_DATA_DIR')
  .option('--database-url <url>', 'postgres://... ; overrides TWOWAY_DATABASE_URL');

/** The configuration, with the global `--data-dir` / `--database-url` options applied. */
function cliConfig(): Config {
  const { dataDir, databaseUrl } = program.opts<{ dataDir?: string; databaseUrl?: string }>();
  return loadConfig(process.env, {
    ...(dataDir !== undefined ? { dataDir } : {}),
    ...(databaseUrl !== undefined ? { databaseUrl } : {}),
  });
}

/** Runs `work` with the store and services open, and closes them afterwards. */
async function withServices<T>(
  work: (services: ReturnType<typeof createServices>, config: Config) => Promise<T>,
): Promise<T> {
  const config = cliConfig();
  const backends = await openBackends(config);
  const services = createServices(backends, config);
  try {
    return await work(services, config);
  } finally {
    await services.parser.close();
    await backends.store.close();
    await backends.kms.close();
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** The upload parts and password options shared by `identity import` and `identity test`. */
interface UploadOptions extends PasswordOptions {
  file?: string;
  cert?: string;
  key?: string;
  chain?: string;
}

/**
 * The identity upload the options name, with its password (see readPassword: never from the command
 * line). A prompt is shown only on a terminal and only when the upload does not open without one.
 * @throws UsageError for an unreadable file.
 */
async function uploadOf(
  options: UploadOptions,
  parser: ReturnType<typeof createServices>['parser'],
  config: Config,
): Promise<IdentityUpload> {
  const upload: IdentityUpload = {
    ...(options.file ? { file: readInput(options.file, '--file') } : {}),
    ...(options.cert ? { certificate: readInput(options.cert, '--cert') } : {}),
    ...(options.key ? { privateKey: readInput(options.key, '--key') } : {}),
    ...(options.chain ? { chain: readInput(options.chain, '--chain') } : {}),
  };
  const encryptable = upload.file ?? upload.privateKey;
  const password = await readPassword(options, {
    configured: config.identityPassword,
    label: options.file ?? options.key ?? 'the identity',
    ...(encryptable
      ? {
          needsPassword: () =>
            parser.parse('cli', upload, new Date()).then(
              () => false,
              (err: unknown) => isCertificateError(err) && err.code === 'bad_password',
            ),
        }
      : {}),
  });
  return password === undefined ? upload : { ...upload, password };
}

const passwordFileHelp = 'read the PKCS#12 / key password from this file (one trailing newline dropped)';
const passwordStdinHelp =
  'read the password from standard input (a prompt without echo on a terminal); without either ' +
  'option: TWOWAY_IDENTITY_PASSWORD, else a prompt on a terminal when the file needs a password';

program
  .command('serve')
  .description('Run the HTTP API, the edge listener and the scheduler (TWOWAY_WORKERS processes)')
  .action(async () => {
    const config = cliConfig();
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
  .requiredOption('--id <id>', `tenant id, ${TENANT_ID_PATTERN}`)
  .option('--name <name>', 'display name (default: the id)')
  .action(async (options: { id: string; name?: string }) => {
    if (!new RegExp(TENANT_ID_PATTERN).test(options.id))
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
  .option('--password-file <path>', passwordFileHelp)
  .addOption(new Option('--password-stdin', passwordStdinHelp).conflicts('passwordFile'))
  .action(async (options: UploadOptions & { tenant: string; name: string }) => {
    await withServices(async ({ tenants, identities, audit, parser }, config) => {
      const upload = await uploadOf(options, parser, config);
      if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
      const view = await identities.importIdentity(options.tenant, options.name, upload);
      await audit.record(options.tenant, { actor: 'cli', ...identityCreated(view) });
      print(view);
    });
  });

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
  .option('--password-file <path>', passwordFileHelp)
  .addOption(new Option('--password-stdin', passwordStdinHelp).conflicts('passwordFile'))
  .option('--trust-anchors <path>', 'PEM CA certificates that verify the server instead of the system roots')
  .option('--timeout-ms <ms>', 'give up after this long (at most TWOWAY_IDENTITY_TEST_TIMEOUT_MS)')
  .action(
    async (
      options: UploadOptions & {
        tenant: string;
        url: string;
        identity?: string;
        trustAnchors?: string;
        timeoutMs?: string;
      },
    ) => {
      const verdict = await withServices(async ({ tenants, tester, parser }, config) => {
        const upload = await uploadOf(options, parser, config);
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const timeoutMs = options.timeoutMs === undefined ? undefined : Number(options.timeoutMs);
        if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs >= 100))
          throw new AppError('bad_request', '--timeout-ms must be an integer of at least 100.');
        const report = await tester.test(options.tenant, {
          url: options.url,
          ...(options.identity ? { identityId: options.identity } : {}),
          upload,
          ...(options.trustAnchors
            ? { trustAnchorsPem: readInput(options.trustAnchors, '--trust-anchors').toString('utf8') }
            : {}),
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
          ...(options.trustAnchors
            ? { trustAnchorsPem: readInput(options.trustAnchors, '--trust-anchors').toString('utf8') }
            : {}),
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
        readInput(options.file, '--file'),
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
          readInput(options.csr, '--csr'),
          days,
        );
        await audit.record(options.tenant, { actor: 'cli', ...clientCertificateIssued(view) });
        if (options.out) writeFileSync(options.out, view.certificatePem);
        if (options.chainOut) writeFileSync(options.chainOut, view.chainPem);
        print(view);
      });
    },
  );

connectionCommands(program, (work) => withServices((services) => work(services)), print);
registerCustodyCommands(program, { config: cliConfig, print });
registerPeopleCommands(program, withServices, print);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Exit status: 0 done, 1 the command failed (its error code is printed), 2 usage or an unreadable
  // input file, 3 `identity test` ran and its verdict is not ok.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2); // commander printed it
  if (err instanceof UsageError) {
    process.stderr.write(`twoway: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError || err instanceof StartupError)
    process.stderr.write(`twoway: ${err.message}\n`);
  else {
    const appError = toAppError(err);
    const detail = appError.code === 'internal_error' && err instanceof Error ? err.message : appError.detail;
    process.stderr.write(`twoway: ${appError.code}: ${detail}\n`);
  }
  process.exit(1);
});
