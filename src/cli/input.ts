import { readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { read } from 'read';

/**
 * A command line that cannot run as given: a bad option value, or an input file that cannot be read.
 * `twoway` prints `twoway: <message>` and exits with status 2, as for commander's own usage errors.
 */
export class UsageError extends Error {
  override name = 'UsageError';
}

const reasons: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
};

/**
 * The bytes of the file an option names.
 * @throws UsageError naming the option and the path when the file cannot be read (missing, a
 *   directory, no permission), rather than an `internal_error` carrying the raw `ENOENT`.
 */
export function readInput(path: string, option: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`cannot read ${option} ${path}: ${reasons[code] ?? code}`);
  }
}

/** The options that say where the PKCS#12 / private-key password comes from. */
export interface PasswordOptions {
  /** A file whose content (one trailing newline dropped) is the password. */
  passwordFile?: string;
  /** Read the password from standard input (a prompt without echo when it is a terminal). */
  passwordStdin?: boolean;
}

/** What {@link readPassword} needs besides the options. */
export interface PasswordContext {
  /** TWOWAY_IDENTITY_PASSWORD, as loadConfig() read it. */
  configured: string | undefined;
  /** Names the file in the prompt. */
  label: string;
  /**
   * Whether the upload needs a password it was not given (parsing it without one fails with
   * `bad_password`); asked only before an interactive prompt. Absent when nothing can be encrypted.
   */
  needsPassword?: () => Promise<boolean>;
  /** Default process.stdin. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** Drops one line ending: `echo secret > file` and `echo secret | twoway ...` add one. */
function withoutNewline(value: string): string {
  return value.replace(/\r?\n$/, '');
}

async function prompt(label: string, stdin: NodeJS.ReadableStream): Promise<string> {
  // On stderr, so that standard output stays the command's JSON. `terminal: true` puts the terminal
  // in raw mode, so the kernel does not echo, even when stderr is redirected; `silent` mutes readline's
  // own echo.
  try {
    return await read({
      prompt: `Password for ${label}:`,
      silent: true,
      terminal: true,
      input: stdin,
      output: process.stderr,
    });
  } catch (cause) {
    throw new UsageError(`no password entered (${(cause as Error).message})`);
  } finally {
    process.stderr.write('\n');
  }
}

/**
 * The password for an identity upload, never from the command line (where `ps` shows it to every
 * user): `--password-file`, else `--password-stdin` (a prompt without echo on a terminal, else all of
 * standard input), else TWOWAY_IDENTITY_PASSWORD, else, on a terminal and only when the upload needs
 * one, a prompt without echo. Undefined when there is none.
 * @throws UsageError when the password file cannot be read.
 */
export async function readPassword(
  options: PasswordOptions,
  context: PasswordContext,
): Promise<string | undefined> {
  const stdin = context.stdin ?? process.stdin;
  if (options.passwordFile !== undefined) {
    return withoutNewline(readInput(options.passwordFile, '--password-file').toString('utf8'));
  }
  if (options.passwordStdin) {
    return stdin.isTTY ? prompt(context.label, stdin) : withoutNewline(await text(stdin));
  }
  if (context.configured !== undefined) return context.configured;
  if (stdin.isTTY && context.needsPassword && (await context.needsPassword())) {
    return prompt(context.label, stdin);
  }
  return undefined;
}
