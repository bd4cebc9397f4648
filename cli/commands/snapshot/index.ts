import type { Command } from 'commander';
import * as list from './list.js';
import * as prune from './prune.js';
import * as restore from './restore.js';
import * as verify from './verify.js';

/** `embedctl snapshot list|restore|prune|verify`: the published versions of the snapshot volume. */
export function register(program: Command): void {
  const snapshot = program
    .command('snapshot')
    .description('published snapshot versions: list, restore, verify');
  for (const sub of [list, restore, prune, verify]) sub.register(snapshot);
}
