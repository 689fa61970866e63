/**
 * `twoway connection add|list|show|update|delete`: connections (saved external API requests) on the
 * configured store, as the API does them (same service, same checks, same audit notes). The secret of
 * the auth type (Basic password, header value, OAuth client secret) never comes from the command
 * line: `--secret-file`, `--secret-stdin`, or a prompt without echo on a terminal.
 */
import type { Static, TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type Command, Option } from 'commander';
import { connectionCreated, connectionDeleted, connectionUpdated } from '../connections/audit.js';
import { type AuthBody, CreateConnectionBody, PatchConnectionBody } from '../connections/schemas.js';
import { AppError } from '../errors/app-error.js';
import type { Services } from '../main.js';
import { everyItem } from '../shared/paging.js';
import type { ConnectionAuthSettings } from '../store/index.js';
import { type PasswordOptions, readInput, readPassword, UsageError } from './input.js';

/** Runs `work` with the services open (cli/index.ts). */
export type WithServices = <T>(work: (services: Services) => Promise<T>) => Promise<T>;

type AuthInput = Static<typeof AuthBody>;
const AUTH_TYPES = ['none', 'basic', 'header', 'oauth2'] as const;

/** The options that describe a connection, shared by `add` and `update`. */
interface ConnectionOptions
  extends Pick<
    ConnectionAuthSettings,
    'username' | 'headerName' | 'tokenUrl' | 'clientId' | 'scope' | 'audience'
  > {
  tenant: string;
  name?: string;
  baseUrl?: string;
  auth?: (typeof AUTH_TYPES)[number];
  clientAuth?: ConnectionAuthSettings['clientAuthentication'];
  secretFile?: string;
  secretStdin?: boolean;
  trustAnchors?: string;
}

function required(value: string | undefined, option: string, auth: string): string {
  if (value === undefined) throw new UsageError(`--auth ${auth} needs ${option}`);
  return value;
}

/** `--secret-file` / `--secret-stdin`, or a prompt on a terminal when the auth type sends a secret. */
function secretOf(options: ConnectionOptions, needed: boolean): Promise<string | undefined> {
  const sources: PasswordOptions = {
    ...(options.secretFile !== undefined ? { passwordFile: options.secretFile } : {}),
    ...(options.secretStdin ? { passwordStdin: true } : {}),
  };
  return readPassword(sources, {
    configured: undefined,
    label: `the ${options.auth} secret of ${options.name ?? 'the connection'}`,
    needsPassword: async () => needed,
  });
}

/** The `auth` body the options describe, with its secret; undefined without `--auth`. */
async function authOf(options: ConnectionOptions, promptForSecret: boolean): Promise<AuthInput | undefined> {
  const type = options.auth;
  if (type === undefined || type === 'none') return type === undefined ? undefined : { type: 'none' };
  const method = options.clientAuth ?? 'client_secret_basic';
  const secret = await secretOf(
    options,
    promptForSecret && (type !== 'oauth2' || method !== 'tls_client_auth'),
  );
  if (type === 'basic') {
    return {
      type,
      username: required(options.username, '--username', type),
      ...(secret ? { password: secret } : {}),
    };
  }
  if (type === 'header') {
    return {
      type,
      headerName: required(options.headerName, '--header-name', type),
      ...(secret ? { headerValue: secret } : {}),
    };
  }
  return {
    type: 'oauth2_client_credentials',
    tokenUrl: required(options.tokenUrl, '--token-url', type),
    clientId: required(options.clientId, '--client-id', type),
    clientAuthentication: method,
    ...(secret ? { clientSecret: secret } : {}),
    ...(options.scope !== undefined ? { scope: options.scope } : {}),
    ...(options.audience !== undefined ? { audience: options.audience } : {}),
  };
}

/** Checks `body` against the API's schema, so the CLI refuses what the API refuses (`bad_request`). */
function checked<T extends TSchema>(schema: T, body: unknown): Static<T> {
  const first = Value.Errors(schema, body).First();
  if (first !== undefined) throw new AppError('bad_request', `${first.path || 'body'}: ${first.message}`);
  return body as Static<T>;
}

/** The options `add` and `update` share. */
function describeConnection(command: Command): Command {
  return command
    .requiredOption('--tenant <tenant>')
    .option('--base-url <url>', 'https URL; requests go to it or below it')
    .addOption(new Option('--auth <type>', 'how the remote API is authenticated').choices([...AUTH_TYPES]))
    .option('--username <name>', '--auth basic: the user id')
    .option('--header-name <name>', '--auth header: the header the secret goes in')
    .option('--token-url <url>', '--auth oauth2: the token endpoint (https)')
    .option('--client-id <id>', '--auth oauth2: the client id')
    .option('--scope <scope>', '--auth oauth2: space-separated scopes')
    .option('--audience <audience>', '--auth oauth2: the audience parameter')
    .addOption(
      new Option(
        '--client-auth <method>',
        '--auth oauth2: client authentication (default client_secret_basic)',
      ).choices(['client_secret_basic', 'client_secret_post', 'tls_client_auth']),
    )
    .option(
      '--secret-file <path>',
      'read the password, header value or client secret from this file (one trailing newline dropped)',
    )
    .addOption(
      new Option(
        '--secret-stdin',
        'read the secret from standard input (a prompt without echo on a terminal)',
      ).conflicts('secretFile'),
    )
    .option(
      '--trust-anchors <path>',
      'PEM CA certificates that verify the remote server instead of the system roots',
    );
}

/** Registers `connection add|list|show|update|delete` on `program`. */
export function connectionCommands(
  program: Command,
  withServices: WithServices,
  print: (value: unknown) => void,
): void {
  const connection = program.command('connection').description('Connections: saved external API requests');

  describeConnection(connection.command('add').description('Save an external API request'))
    .requiredOption('--name <name>', 'unique in the tenant; forwards name it in Twoway-Connection')
    .option(
      '--client-certificate',
      "present the client certificate (the tenant's default identity unless --identity)",
    )
    .option('--identity <id>', 'the identity to present instead of the default')
    .option('--disabled', 'save it disabled')
    .action(
      async (
        options: ConnectionOptions & { clientCertificate?: boolean; identity?: string; disabled?: boolean },
      ) => {
        if (options.baseUrl === undefined)
          throw new UsageError("required option '--base-url <url>' not specified");
        const auth = await authOf(options, true);
        const body = checked(CreateConnectionBody, {
          name: options.name,
          baseUrl: options.baseUrl,
          ...(auth ? { auth } : {}),
          clientCertificate: {
            enabled: options.clientCertificate === true,
            ...(options.identity !== undefined ? { identityId: options.identity } : {}),
          },
          ...(options.trustAnchors !== undefined
            ? { trustAnchorsPem: readInput(options.trustAnchors, '--trust-anchors').toString('utf8') }
            : {}),
          ...(options.disabled ? { enabled: false } : {}),
        });
        await withServices(async ({ tenants, connections, audit }) => {
          if (!(await tenants.getTenant(options.tenant))) throw new AppError('not_found', 'No such tenant.');
          const view = await connections.create(options.tenant, body);
          await audit.record(options.tenant, { actor: 'cli', ...connectionCreated(view) });
          print(view);
        });
      },
    );

  connection
    .command('list')
    .description("List a tenant's connections (never a secret)")
    .requiredOption('--tenant <tenant>')
    .action(async (options: { tenant: string }) => {
      await withServices(async ({ connections }) =>
        print({ items: await everyItem((request) => connections.list(options.tenant, request)) }),
      );
    });

  connection
    .command('show')
    .description('Show one connection, with whether its client certificate is available')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--id <id>', 'connection id (con_...)')
    .action(async (options: { tenant: string; id: string }) => {
      await withServices(async ({ connections }) => print(await connections.get(options.tenant, options.id)));
    });

  describeConnection(
    connection.command('update').description('Change a connection; a secret is replaced only when given'),
  )
    .requiredOption('--id <id>', 'connection id (con_...)')
    .option('--name <name>', 'new name')
    .addOption(new Option('--client-certificate <state>', 'turn the switch on or off').choices(['on', 'off']))
    .option('--identity <id>', "the identity to present; 'default' for the tenant's default identity")
    .option('--no-trust-anchors', 'verify the remote server with the system roots again')
    .addOption(new Option('--enabled <state>', 'enable or disable the connection').choices(['true', 'false']))
    .action(
      async (
        options: Omit<ConnectionOptions, 'trustAnchors'> & {
          id: string;
          clientCertificate?: 'on' | 'off';
          identity?: string;
          trustAnchors?: string | false;
          enabled?: 'true' | 'false';
        },
      ) => {
        const { trustAnchors } = options;
        const auth = await authOf({ ...options, trustAnchors: undefined }, false);
        if (auth === undefined && (options.secretFile !== undefined || options.secretStdin)) {
          throw new UsageError('a new secret needs --auth with the settings it goes with');
        }
        const certificate = {
          ...(options.clientCertificate !== undefined ? { enabled: options.clientCertificate === 'on' } : {}),
          ...(options.identity !== undefined
            ? { identityId: options.identity === 'default' ? null : options.identity }
            : {}),
        };
        const body = checked(PatchConnectionBody, {
          ...(options.name !== undefined ? { name: options.name } : {}),
          ...(options.baseUrl !== undefined ? { baseUrl: options.baseUrl } : {}),
          ...(auth ? { auth } : {}),
          ...(Object.keys(certificate).length > 0 ? { clientCertificate: certificate } : {}),
          ...(trustAnchors === false
            ? { trustAnchorsPem: null }
            : typeof trustAnchors === 'string'
              ? { trustAnchorsPem: readInput(trustAnchors, '--trust-anchors').toString('utf8') }
              : {}),
          ...(options.enabled !== undefined ? { enabled: options.enabled === 'true' } : {}),
        });
        await withServices(async ({ connections, audit }) => {
          const view = await connections.update(options.tenant, options.id, body);
          await audit.record(options.tenant, { actor: 'cli', ...connectionUpdated(view, Object.keys(body)) });
          print(view);
        });
      },
    );

  connection
    .command('delete')
    .description('Delete a connection and its sealed secret')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--id <id>', 'connection id (con_...)')
    .action(async (options: { tenant: string; id: string }) => {
      await withServices(async ({ connections, audit }) => {
        await connections.remove(options.tenant, options.id);
        await audit.record(options.tenant, { actor: 'cli', ...connectionDeleted(options.id) });
        print({ id: options.id, deleted: true });
      });
    });
}
