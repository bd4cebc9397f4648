#!/usr/bin/env node
import { Command } from 'commander';

/**
 * `embedctl`: one binary, one image, every program of the pipeline. Each program folder registers its own
 * subcommands, so this file only wires them together. Only the module of the command being run is loaded: the
 * controller's pods then do not carry the compactor's or local mode's dependencies in memory.
 */
type Register = (program: Command) => void;
const modules: Record<string, () => Promise<{ register: Register }>> = {
  controller: () => import('../controller/command.js'),
  worker: () => import('../worker/command.js'),
  compactor: () => import('../compactor/command.js'),
  // local mode also owns the user commands (submit, status, query, snapshot, compact).
  local: () => import('../local/command.js'),
};

const program = new Command('embedctl')
  .description('Receipt OCR → embeddings → Chroma: controller, worker, compactor and a local runner')
  .showHelpAfterError();

const first = process.argv[2];
const owner =
  first && !first.startsWith('-') && first !== 'help' ? (modules[first] ?? modules.local!) : undefined;
for (const load of owner ? [owner] : Object.values(modules)) (await load()).register(program);

await program.parseAsync(process.argv);
