#!/usr/bin/env node
import { Command } from 'commander';
import { register } from './command.js';

/**
 * `embedctl worker` alone: the same command as in cli/main.ts, without loading the other programs. Tests and the
 * benchmark spawn this entry (`node --import tsx worker/main.ts worker …`).
 */
const program = new Command('embedctl').showHelpAfterError();
register(program);
await program.parseAsync(process.argv);
