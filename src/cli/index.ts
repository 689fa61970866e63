#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/config.js';
import { AppError, toAppError } from '../errors/app-error.js';
import { createServices, openBackends, StartupError, startTwoway } from '../main.js';

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
  try {
    return await work(createServices(backends, config));
  } finally {
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
  .description('Run the HTTP API (admin + runtime) on embedded defaults or the TWOWAY_* configuration')
  .action(async () => {
    const twoway = await startTwoway(loadConfig());
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
    await withServices(async ({ tenants }) => {
      const { tenant: created, apiKey } = await tenants.createTenant(options.id, options.name ?? options.id);
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
      await withServices(async ({ tenants, identities }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const view = await identities.importIdentity(options.tenant, options.name, {
          ...(options.file ? { file: readFileSync(options.file) } : {}),
          ...(options.cert ? { certificate: readFileSync(options.cert) } : {}),
          ...(options.key ? { privateKey: readFileSync(options.key) } : {}),
          ...(options.chain ? { chain: readFileSync(options.chain) } : {}),
          ...(password !== undefined ? { password } : {}),
        });
        print(view);
      });
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
      await withServices(async ({ tenants, mappings }) => {
        if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
        const view = await mappings.create(options.tenant, {
          name: options.name,
          service: options.service,
          match: options.match,
          identityId: options.identity,
          ...(options.url ? { url: options.url } : {}),
          ...(options.trustAnchors ? { trustAnchorsPem: readFileSync(options.trustAnchors, 'utf8') } : {}),
        });
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
