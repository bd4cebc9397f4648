#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { configureUsage, exitCodeOf, exitQuietlyOnClosedPipe, writeError } from './usage.js';

/**
 * `embedctl`: one binary, one image, every program of the pipeline. Each program folder registers its own
 * subcommand, and the user commands live in cli/commands/ (one module per verb), so this file only wires them
 * together. Only the module of the command being run is loaded: the controller's pods then do not carry the
 * compactor's or local mode's dependencies in memory. Help, and a word that is no command, load them all: commander
 * then lists every command, or refuses the word as an unknown command (exit 2).
 */
type Register = (program: Command) => void;
const modules: Record<string, () => Promise<{ register: Register }>> = {
  controller: () => import('../controller/command.js'),
  worker: () => import('../worker/command.js'),
  compactor: () => import('../compactor/command.js'),
  local: () => import('./commands/local.js'),
  submit: () => import('./commands/submit.js'),
  status: () => import('./commands/status.js'),
  get: () => import('./commands/get.js'),
  describe: () => import('./commands/describe.js'),
  wait: () => import('./commands/wait.js'),
  query: () => import('./commands/query.js'),
  snapshot: () => import('./commands/snapshot/index.js'),
  compact: () => import('./commands/compact.js'),
  migrate: () => import('./commands/migrate.js'),
};

exitQuietlyOnClosedPipe();
// Bad usage (an unknown option or command, a value a parser refuses) exits 2 with one line, never a stack trace;
// commander's error is printed by configureUsage's output, the exit code is set below.
const program = configureUsage(
  new Command('embedctl').description(
    'Receipt OCR → embeddings → Chroma: controller, worker, compactor and a local runner',
  ),
);

const first = process.argv[2];
const owner = first !== undefined && Object.hasOwn(modules, first) ? modules[first] : undefined;
for (const load of owner ? [owner] : Object.values(modules)) (await load()).register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!(err instanceof CommanderError)) writeError(err);
  process.exitCode = exitCodeOf(err);
}
