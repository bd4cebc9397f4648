import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CommanderError, InvalidArgumentError, type Command } from 'commander';
import { EXIT } from '../core/config/exit-codes.js';
import { ConfigError, errorMessage, PipelineError, UsageError } from '../core/errors.js';
import { safeField } from './safe-text.js';

/**
 * How `embedctl` fails, in one place: option values are parsed by validating parsers (commander's argParser with
 * InvalidArgumentError), commander's own errors (unknown option or command, a bad value) go through exitOverride, and
 * every error is one line on stderr (JSON `{"error": {"reason", "message"}}` with --json), with exit code 2 for bad
 * usage or configuration and 1 for a failure (core/config/exit-codes.ts). A closed stdout (`embedctl status --json |
 * head`) ends the process quietly.
 */
export { EXIT };

/** A parser for an integer option value ≥ `min` (and ≤ `max`): "0", "-2", "abc", "1.5" and "1e3" are refused. */
export function intArg(min: number, max?: number): (value: string) => number {
  const range = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  return (value: string) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max))
      throw new InvalidArgumentError(`Expected ${range}.`);
    return n;
  };
}

/** A parser for an argument that must hold something besides spaces. */
export function nonEmptyArg(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('It must not be empty.');
  return value;
}

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
