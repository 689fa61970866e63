import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

/** The built CLI (`npm run build` makes it). */
export const CLI = join(resolve(import.meta.dirname, '../..'), 'dist/cli/index.js');

/** What a CLI run left: exit status and both outputs. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; `stdin` is piped in when given, else standard input is empty (not a terminal). */
export function runCli(args: string[], env: NodeJS.ProcessEnv, stdin = ''): Promise<Outcome> {
  return new Promise((done) => {
    const child = execFile('node', [CLI, ...args], { env }, (err, stdout, stderr) =>
      done({ code: err ? Number(err.code) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}
