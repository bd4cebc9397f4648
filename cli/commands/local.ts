import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { errorMessage, UsageError } from '../../core/errors.js';
import { localLogger } from '../../local/log.js';
import { childEntry, localRun, type RunOptions, type RunSummary } from '../../local/run.js';
import { embedderOption, homeOption, intArg } from '../options.js';
import { askedEmbedder } from '../../local/embedder.js';
import { formatSummary } from '../run-summary-text.js';
import { safeField } from '../safe-text.js';
import { EXIT, exitCodeOf, writeError } from '../usage.js';

/** `embedctl local run`: the whole pipeline on one machine (local/run.ts); exit 0 only for a complete run. */
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
    .addOption(embedderOption())
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
    .action(async (f: RunFlags, cmd: Command) => {
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
        const { timeout, json, embedder, ...asIs } = f;
        const asked = askedEmbedder(embedder);
        summary = await localRun({
          ...asIs,
          ...(asked ? { embedder: asked } : {}),
          timeoutMs: timeout * 1000,
          self: childEntry(),
          log,
          progress: !json,
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
    });
}

/** The options of `local run` as commander parses them: RunOptions' own, but for --timeout in seconds and --json. */
type RunFlags = Pick<
  RunOptions,
  'receipts' | 'seed' | 'input' | 'concurrency' | 'batchSize' | 'maxAttempts' | 'places' | 'queries'
> & { home: string; timeout: number; json?: boolean; embedder?: string };

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
