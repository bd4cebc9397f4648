import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { localLogger } from './log.js';
import { errorMessage, UsageError } from '../core/errors.js';
import { EXIT, exitCodeOf, intArg, writeError } from '../cli/usage.js';
import { safeField } from '../cli/safe-text.js';
import { childEntry, localRun, type RunSummary } from './run.js';
import { registerUserCommands } from './user-commands.js';
import { DEFAULT_HOME } from './home.js';
import { formatSummary } from './format.js';
import { ENV, processEnv } from '../core/config/env.js';

/** Exit codes of the user commands: 0 ok, 1 failed (something to look at), 2 bad usage. */
export { EXIT };

const homeOption = () =>
  new Option('--home <dir>', 'local state directory (queues, ledger, objects, snapshots)').default(
    processEnv()[ENV.EMBEDCTL_HOME] ?? DEFAULT_HOME,
  );

export function register(program: Command): void {
  const local = program
    .command('local')
    .description('the whole pipeline on one machine with embedded defaults (docs/local.md)');

  local
    .command('run')
    .description(
      'generate (or read) receipts, then ingest → workers → stream → compactor until everything is compacted; print a summary',
    )
    .addOption(homeOption())
    .option('--receipts <n>', 'synthetic receipts to generate', intArg(0), 20)
    .option('--seed <n>', 'seed of the synthetic receipts (same seed, same receipts)', intArg(0), 1)
    .option('--input <folder>', 'embed the NDJSON pairs of this folder instead of generating receipts')
    .option('--concurrency <n>', 'worker processes at once', intArg(1), 2)
    .option('--batch-size <n>', 'receipts per worker process, at most', intArg(1), 10)
    .option('--max-attempts <n>', 'attempts per receipt for retryable failures', intArg(1), 3)
    .option('--timeout <seconds>', 'give up waiting for compaction after this long', intArg(1), 1800)
    .option('--no-places', 'no sample place lookup (merchants then resolve only through the lines snapshot)')
    .option('--no-queries', 'skip the similarity queries of the summary')
    .option('--json', 'print the summary as JSON on stdout (logs stay on stderr)')
    .action(
      async (
        f: {
          home: string;
          receipts: number;
          seed: number;
          input?: string;
          concurrency: number;
          batchSize: number;
          maxAttempts: number;
          timeout: number;
          places: boolean;
          queries: boolean;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const log = localLogger('local');
        let summary: RunSummary;
        try {
          checkRunUsage(f, cmd);
        } catch (err) {
          writeError(err, f.json);
          process.exitCode = exitCodeOf(err);
          return;
        }
        try {
          summary = await localRun({
            home: f.home,
            receipts: f.receipts,
            seed: f.seed,
            input: f.input,
            concurrency: f.concurrency,
            batchSize: f.batchSize,
            maxAttempts: f.maxAttempts,
            places: f.places,
            timeoutMs: f.timeout * 1000,
            queries: f.queries,
            self: childEntry(),
            log,
            progress: !f.json,
          });
        } catch (err) {
          if (exitCodeOf(err) === EXIT.usage || f.json) writeError(err, f.json);
          else
            process.stderr.write(
              `embedctl local run failed: ${safeField(errorMessage(err))}\n` +
                `State is kept in ${f.home}; run the same command again to resume, or remove the directory to start over.\n`,
            );
          process.exitCode = exitCodeOf(err);
          return;
        }
        process.stdout.write(f.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
        // A live snapshot that holds other counts than the job results is not a finished run (a version restored
        // to an older one, a lost CURRENT, a failed compaction): say so and exit non-zero.
        const disagree = Object.entries(summary.vectors).filter(([, v]) => v.snapshot !== v.expected);
        if (disagree.length)
          process.stderr.write(
            `embedctl local run: the live snapshot disagrees with the job results (${disagree
              .map(([c, v]) => `${c}: ${v.snapshot} vectors, job results say ${v.expected}`)
              .join(
                '; ',
              )}). Check it with: embedctl snapshot verify --home ${f.home} (docs/local.md, "A damaged snapshot")\n`,
          );
        process.exitCode = summary.complete && disagree.length === 0 ? EXIT.ok : EXIT.failed;
      },
    );

  registerUserCommands(program, homeOption);
}

/** What the option parsers cannot see alone; checked before the home is opened, so a bad call creates nothing. */
function checkRunUsage(f: { input?: string }, cmd: Command): void {
  if (f.input !== undefined) {
    const input = resolve(f.input);
    const s = statSync(input, { throwIfNoEntry: false });
    if (!s) throw new UsageError(`--input ${input} does not exist`, { input });
    if (!s.isDirectory()) throw new UsageError(`--input ${input} is not a directory`, { input });
    for (const flag of ['receipts', 'seed'] as const)
      if (cmd.getOptionValueSource(flag) === 'cli')
        throw new UsageError(
          `--${flag} and --input do not go together: --input embeds the receipts of the folder, --${flag} is for generated ones`,
        );
  }
}
