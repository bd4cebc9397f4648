import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CommanderError, type Command } from 'commander';
import { EXIT } from '../core/config/exit-codes.js';
import { ConfigError, errorMessage, PipelineError, UsageError } from '../core/errors.js';
import { safeField } from './safe-text.js';

/**
 * How `embedctl` fails, in one place: option values are parsed by validating parsers (cli/options.ts: commander's argParser with
 * InvalidArgumentError), commander's own errors (unknown option or command, a bad value) go through exitOverride, and
 * every error is one line on stderr (JSON `{"error": {"reason", "message"}}` with --json), with exit code 2 for bad
 * usage or configuration and 1 for a failure (core/config/exit-codes.ts). A closed stdout (`embedctl status --json |
 * head`) ends the process quietly.
 */
export { EXIT };

/** --json anywhere before a `--`: errors are then JSON too. */
export function jsonRequested(argv: readonly string[] = process.argv): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** The machine-readable reason of an error: the PipelineError's, `BadUsage` for commander's, else `Failed`. */
export function reasonOf(err: unknown): string {
  if (err instanceof PipelineError) return err.reason;
  if (err instanceof CommanderError) return 'BadUsage';
  return 'Failed';
}

/** 2 for bad usage or configuration, 1 for anything else. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  return err instanceof UsageError || err instanceof ConfigError ? EXIT.usage : EXIT.failed;
}

/** Writes an error as one line on stderr: `error: …`, or `{"error": {"reason", "message"}}` with --json. */
export function writeError(err: unknown, json = jsonRequested()): void {
  const message = oneLine(errorMessage(err).replace(/^error: /, ''));
  process.stderr.write(
    json
      ? `${JSON.stringify({ error: { reason: reasonOf(err), message } })}\n`
      : `error: ${safeField(message)}\n`,
  );
}

const oneLine = (s: string) =>
  s
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');

/**
 * Makes `program` (and every command added after this call) throw instead of exiting, and print its errors through
 * writeError: call before registering the subcommands.
 */
export function configureUsage(program: Command): Command {
  return program.exitOverride().configureOutput({
    outputError: (str) => writeError(new CommanderError(1, 'usage', str)),
  });
}

/**
 * Runs a command body that returns its exit code; an error prints one line that says what to do (JSON with --json),
 * with exit code 1 (2 for bad usage or configuration).
 */
export async function guarded(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err) {
    writeError(err);
    process.exitCode = exitCodeOf(err);
  }
}

/** Ends the process quietly when stdout or stderr is a pipe whose reader has gone (EPIPE), as `head` does. */
export function exitQuietlyOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
    });
  }
}

/**
 * The home of a command that only reads one (status, query, snapshot list, compact): it must exist, and is never
 * created by the reading.
 */
export function existingHome(home: string): string {
  const root = resolve(home);
  if (!existsSync(root))
    throw new UsageError(
      `--home ${root} does not exist: nothing has run there (embedctl local run --home ${home} creates it)`,
      { home: root },
    );
  if (!statSync(root).isDirectory())
    throw new UsageError(`--home ${root} is not a directory`, { home: root });
  return root;
}
