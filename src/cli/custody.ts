import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { AppError } from '../errors/app-error.js';
import { rotateKek } from '../key-custody.js';
import { openBackends } from '../main.js';
import { openStore, type Store } from '../store/index.js';
import { UsageError } from './input.js';

/** What the custody commands need from the CLI's entry point. */
export interface CustodyCli {
  /** The configuration with the global `--data-dir` / `--database-url` applied. */
  config(): Config;
  print(value: unknown): void;
}

async function withStore<T>(config: Config, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(config.databaseUrl, config.dataDir, {
    connectTimeoutMs: config.databaseConnectTimeoutMs,
    statementTimeoutMs: config.databaseStatementTimeoutMs,
  });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/**
 * The lines of `file`, read only once iterated: a readline interface made earlier would read a small
 * file to its end before anyone listens, and its iterator would then wait forever.
 */
async function* linesOf(file: string): AsyncGenerator<string> {
  yield* createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
}

/**
 * `twoway kms status|rotate`, `twoway backup --out FILE`, `twoway restore --from FILE`: key custody
 * commands, on the store the configuration (or `--data-dir` / `--database-url`) names.
 */
export function registerCustodyCommands(program: Command, cli: CustodyCli): void {
  const kms = program.command('kms').description('The KEK that wraps every sealed key');
  kms
    .command('status')
    .description('Print the configured KEK and how many sealed rows each KEK wraps')
    .action(async () => {
      const backends = await openBackends(cli.config());
      try {
        cli.print({ kekId: backends.kms.kekId, rowsByKek: await backends.store.countSealedKeys() });
      } finally {
        await backends.store.close();
        await backends.kms.close();
      }
    });
  kms
    .command('rotate')
    .description(
      'Re-wrap every DEK under the configured KEK (a new TWOWAY_PKCS11_KEY_LABEL, or TWOWAY_KMS=pkcs11 ' +
        'with the local key still present) while servers keep serving; safe to run again after a crash. ' +
        'Progress goes to standard error, the summary to standard output',
    )
    .option('--batch-size <rows>', 'rows per transaction', '200')
    .action(async (options: { batchSize: string }) => {
      const batchSize = Number(options.batchSize);
      if (!(Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 10_000))
        throw new UsageError('--batch-size must be an integer from 1 to 10000');
      const backends = await openBackends(cli.config());
      try {
        const startedAt = performance.now();
        const { moved, counts } = await rotateKek(backends, {
          batchSize,
          onProgress: ({ moved: done, remaining, kekId }) =>
            process.stderr.write(`twoway: kms rotate: ${done} rows moved to ${kekId}, ${remaining} left\n`),
        });
        const seconds = (performance.now() - startedAt) / 1000;
        cli.print({
          kekId: backends.kms.kekId,
          moved,
          seconds: Number(seconds.toFixed(3)),
          rowsPerSecond: seconds > 0 ? Math.round(moved / seconds) : moved,
          rowsByKek: counts,
        });
      } finally {
        await backends.store.close();
        await backends.kms.close();
      }
    });

  program
    .command('backup')
    .description(
      'Write a consistent snapshot of the store (sealed keys only; never the KEK) to FILE (mode 0600) while servers keep serving',
    )
    .requiredOption('--out <file>', 'the backup file to write (replaced only once complete)')
    .action(async (options: { out: string }) => {
      const partial = `${options.out}.partial`;
      const result = await withStore(cli.config(), async (store) => {
        if (!(await store.hasData())) throw new AppError('not_found', 'The store holds no data to back up.');
        const out = createWriteStream(partial, { mode: 0o600 });
        try {
          const written = await store.exportSnapshot(async (line) => {
            if (!out.write(`${line}\n`)) await once(out, 'drain');
          });
          out.end();
          await once(out, 'finish');
          return written;
        } catch (err) {
          out.destroy();
          rmSync(partial, { force: true });
          throw err;
        }
      });
      renameSync(partial, options.out);
      cli.print({ out: options.out, rows: result.rows, bytes: statSync(options.out).size });
    });

  program
    .command('restore')
    .description(
      'Load a backup into an empty store; start the servers with the KEK that sealed it (key file, TWOWAY_MASTER_KEY or the token)',
    )
    .requiredOption('--from <file>', 'a file written by twoway backup')
    .action(async (options: { from: string }) => {
      if (!existsSync(options.from)) throw new UsageError(`cannot read --from ${options.from}: no such file`);
      const result = await withStore(cli.config(), async (store) => {
        if (await store.hasData())
          throw new AppError(
            'store_not_empty',
            'The store already holds data: restore only into an empty one.',
          );
        await store.migrate();
        return store.importSnapshot(linesOf(options.from));
      });
      cli.print({ from: options.from, rows: result.rows });
    });
}
