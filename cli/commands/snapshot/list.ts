import type { Command } from 'commander';
import { ENV } from '../../../core/config/env.js';
import { chromaRootOption, homeOption, jsonOption, type VolumeFlags } from '../../options.js';
import { printJson, say } from '../../print.js';
import { readSnapshots } from '../../resources/sources.js';
import { guarded } from '../../usage.js';

export function register(snapshot: Command): void {
  snapshot
    .command('list')
    .description('versions per collection on the volume, CURRENT marked, and the object-store pointer')
    .addOption(homeOption())
    .option('--cloud', `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}`)
    .addOption(chromaRootOption())
    .addOption(jsonOption())
    .action((f: VolumeFlags & { json?: boolean }) => guarded(() => list(f)));
}

async function list(f: VolumeFlags & { json?: boolean }): Promise<number> {
  const out = await readSnapshots(f);
  if (f.json) printJson(out);
  else
    for (const c of out) {
      say(
        `${c.collection}: CURRENT ${c.current ?? '(none)'}, object-store pointer ${c.pointer ?? '(none)'}\n`,
      );
      for (const v of c.versions) say(`  ${v === c.current ? '*' : ' '} ${v}\n`);
    }
  return 0;
}
