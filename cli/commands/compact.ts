import { rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { runCompactorChild } from '../../local/compactor-child.js';
import { homePaths, lockHome } from '../../local/home.js';
import { homeOption } from '../options.js';
import { say } from '../print.js';
import { existingHome, guarded } from '../usage.js';

/** `embedctl compact`: one compaction pass over the home's LINES and WORDS queues. */
export function register(program: Command): void {
  program
    .command('compact')
    .description(
      'one compaction pass over what is queued (local mode; in the cloud the compactor Deployment does this)',
    )
    .addOption(homeOption())
    .action((f: { home: string }) => guarded(() => compact(f.home)));
}

async function compact(home: string): Promise<number> {
  // A running `local run` compacts already; and while this pass runs, no run may start on the home.
  const paths = homePaths(existingHome(home));
  const unlock = lockHome(paths);
  let result: Awaited<ReturnType<typeof runCompactorChild>>;
  try {
    result = await runCompactorChild({ home, once: true });
  } finally {
    // The pass's working copies (a full copy of each live version) are not kept once it is over.
    await rm(paths.scratch, { recursive: true, force: true });
    unlock();
  }
  const { code, stats } = result;
  say(
    stats.publishes > 0
      ? `published ${stats.publishes} version(s); merging took ${(stats.mergeMs / 1000).toFixed(1)} s\n`
      : 'nothing to compact: the LINES and WORDS queues are empty\n',
  );
  return code;
}
