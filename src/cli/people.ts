import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { AppError } from '../errors/app-error.js';
import type { Services } from '../main.js';
import {
  apiKeyCreated,
  apiKeyRevoked,
  memberDeleted,
  memberSaved,
  portalLinkCreated,
  roleDeleted,
  roleSaved,
} from '../people/audit.js';
import { ALL_PERMISSIONS, isPermission, type Permission } from '../people/permissions.js';
import { portalUrl } from '../people/sessions.js';

/** Runs `work` with the store and services open (cli/index.ts), and closes them afterwards. */
export type WithServices = <T>(work: (services: Services, config: Config) => Promise<T>) => Promise<T>;

/** The CLI acts for the operator of the deployment: it may grant every permission. */
const CLI = ALL_PERMISSIONS;

/** A comma-separated option as a list, empty entries dropped. */
function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

/** @throws AppError `bad_request` naming the first entry that is not a permission of the catalogue */
function permissionsOf(value: string | undefined): Permission[] {
  const names = list(value);
  const unknown = names.find((name) => !isPermission(name));
  if (unknown !== undefined) throw new AppError('bad_request', `"${unknown}" is not a permission.`);
  return names as Permission[];
}

/**
 * The base URL links printed by the CLI start with: TWOWAY_PUBLIC_URL, else this host's HTTP
 * listener as configured (a wildcard bind address as `localhost`).
 */
export function linkBaseUrl(config: Pick<Config, 'publicUrl' | 'host' | 'httpPort'>): string {
  if (config.publicUrl !== undefined) return config.publicUrl;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.httpPort}`;
}

async function requireTenant(services: Services, tenantId: string): Promise<void> {
  if (!(await services.tenants.getTenant(tenantId))) throw new AppError('not_found', 'No such tenant.');
}

/**
 * `role`, `member`, `api-key`, `portal-link` and `console-link`: the people commands, acting on the
 * store directly like the others, audited with the actor `cli`.
 */
export function registerPeopleCommands(
  program: Command,
  withServices: WithServices,
  print: (value: unknown) => void,
): void {
  const role = program.command('role').description('Custom roles of a tenant (built in: admin, viewer)');
  role
    .command('put')
    .description('Create or replace a custom role')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--name <name>', 'role name, ^[a-z][a-z0-9-]{0,62}$')
    .option(
      '--permissions <list>',
      'comma-separated permissions, e.g. connections:read,connections:write',
      '',
    )
    .option('--description <text>')
    .action(async (options: { tenant: string; name: string; permissions: string; description?: string }) => {
      const permissions = permissionsOf(options.permissions);
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        const { created, role: view } = await services.people.putRole(
          options.tenant,
          options.name,
          { permissions, ...(options.description !== undefined ? { description: options.description } : {}) },
          CLI,
        );
        await services.audit.record(options.tenant, { actor: 'cli', ...roleSaved(view, created) });
        print(view);
      });
    });
  role
    .command('list')
    .requiredOption('--tenant <tenant>')
    .action(async (options: { tenant: string }) => {
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        print((await services.people.listRoles(options.tenant, { limit: 1000 })).items);
      });
    });
  role
    .command('delete')
    .description('Delete a custom role nobody holds')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--name <name>')
    .action(async (options: { tenant: string; name: string }) => {
      await withServices(async (services) => {
        await services.people.deleteRole(options.tenant, options.name);
        await services.audit.record(options.tenant, { actor: 'cli', ...roleDeleted(options.name) });
      });
    });

  const member = program.command('member').description("Members of a tenant, under the platform's user ids");
  member
    .command('put')
    .description('Create or replace a member')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--id <memberId>', "the platform's own user id")
    .requiredOption('--email <address>')
    .option('--name <name>')
    .option('--roles <list>', 'comma-separated role names', '')
    .action(async (options: { tenant: string; id: string; email: string; name?: string; roles: string }) => {
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        const { created, member: view } = await services.people.putMember(
          options.tenant,
          options.id,
          {
            email: options.email,
            roles: list(options.roles),
            ...(options.name !== undefined ? { name: options.name } : {}),
          },
          CLI,
        );
        await services.audit.record(options.tenant, { actor: 'cli', ...memberSaved(view, created) });
        print(view);
      });
    });
  member
    .command('list')
    .requiredOption('--tenant <tenant>')
    .action(async (options: { tenant: string }) => {
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        const items = [];
        let cursor: string | undefined;
        do {
          const page = await services.people.listMembers(options.tenant, {
            limit: 1000,
            ...(cursor !== undefined ? { cursor } : {}),
          });
          items.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        print(items);
      });
    });
  member
    .command('delete')
    .description("Delete a member; ends the member's sessions at once")
    .requiredOption('--tenant <tenant>')
    .requiredOption('--id <memberId>')
    .action(async (options: { tenant: string; id: string }) => {
      await withServices(async (services) => {
        await services.people.deleteMember(options.tenant, options.id, CLI);
        await services.audit.record(options.tenant, { actor: 'cli', ...memberDeleted(options.id) });
      });
    });

  const apiKey = program.command('api-key').description('API keys of a tenant, with roles');
  apiKey
    .command('create')
    .description('Create an API key (printed once)')
    .requiredOption('--tenant <tenant>')
    .option('--name <name>')
    .option('--roles <list>', 'comma-separated role names (default admin)')
    .action(async (options: { tenant: string; name?: string; roles?: string }) => {
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        const created = await services.people.createApiKey(
          options.tenant,
          {
            ...(options.name !== undefined ? { name: options.name } : {}),
            ...(options.roles !== undefined ? { roles: list(options.roles) } : {}),
          },
          CLI,
        );
        await services.audit.record(options.tenant, { actor: 'cli', ...apiKeyCreated(created) });
        print(created);
      });
    });
  apiKey
    .command('list')
    .requiredOption('--tenant <tenant>')
    .action(async (options: { tenant: string }) => {
      await withServices(async (services) => {
        await requireTenant(services, options.tenant);
        print((await services.people.listApiKeys(options.tenant, { limit: 1000 })).items);
      });
    });
  apiKey
    .command('revoke')
    .description('Revoke an API key (a running server stops accepting it within a second)')
    .requiredOption('--tenant <tenant>')
    .requiredOption('--id <id>', 'key id (key_...)')
    .action(async (options: { tenant: string; id: string }) => {
      await withServices(async (services) => {
        await services.people.revokeApiKey(options.tenant, options.id, CLI);
        await services.audit.record(options.tenant, { actor: 'cli', ...apiKeyRevoked(options.id) });
      });
    });

  program
    .command('portal-link')
    .description('Portal links for members')
    .command('create')
    .description("A single-use link (five minutes) that signs a member in to the tenant's portal")
    .requiredOption('--tenant <tenant>')
    .requiredOption('--member <memberId>')
    .option('--return-url <path>', 'a path under /ui/ to land on')
    .option('--intent <intent>', 'what the member came to do, passed to the UI')
    .action(async (options: { tenant: string; member: string; returnUrl?: string; intent?: string }) => {
      await withServices(async (services, config) => {
        const { token, expiresAt } = await services.sessions.createPortalLink(
          options.tenant,
          {
            memberId: options.member,
            ...(options.returnUrl !== undefined ? { returnUrl: options.returnUrl } : {}),
            ...(options.intent !== undefined ? { intent: options.intent } : {}),
          },
          CLI,
        );
        await services.audit.record(options.tenant, {
          actor: 'cli',
          ...portalLinkCreated(options.member, expiresAt),
        });
        print({ url: portalUrl(linkBaseUrl(config), token), expiresAt: expiresAt.toISOString() });
      });
    });

  program
    .command('console-link')
    .description('A single-use link (five minutes) that signs the operator in to the console')
    .action(async () => {
      await withServices(async (services, config) => {
        const { token, expiresAt } = await services.sessions.createConsoleLink();
        print({ url: portalUrl(linkBaseUrl(config), token), expiresAt: expiresAt.toISOString() });
      });
    });
}
