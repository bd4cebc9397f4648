#!/usr/bin/env node
import { Command } from 'commander';
import { register as registerController } from '../controller/command.js';
import { register as registerWorker } from '../worker/command.js';
import { register as registerCompactor } from '../compactor/command.js';
import { register as registerLocal } from '../local/command.js';

/**
 * `embedctl`: one binary, one image, every program of the pipeline. Each program folder registers its own
 * subcommands, so this file only wires them together.
 */
const program = new Command('embedctl')
  .description('Receipt OCR → embeddings → Chroma: controller, worker, compactor and a local runner')
  .showHelpAfterError();

registerController(program);
registerWorker(program);
registerCompactor(program);
registerLocal(program);

await program.parseAsync(process.argv);
