import type { Command } from 'commander';
import { ENV } from '../../../core/config/env.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { readPointer } from '../../../core/snapshot/s3-snapshot.js';
import { listVersions, readCurrent } from '../../../core/snapshot/volume.js';
import { chromaRootOption, homeOption, jsonOption, type VolumeFlags } from '../../options.js';
import { printJson, say } from '../../print.js';
import { snapshotTarget } from '../../snapshot-target.js';
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
  const { root, mirror, close } = snapshotTarget(f);
  try {
    const out = await Promise.all(
      COLLECTIONS.map(async (c) => ({
        collection: c,
        current: root ? await readCurrent(root, c) : undefined,
        versions: root ? await listVersions(root, c) : [],
        pointer: mirror
          ? await readPointer(mirror.store, mirror.bucket, c).catch(() => undefined)
          : undefined,
      })),
    );
    if (f.json) printJson(out);
    else
      for (const c of out) {
        say(
          `${c.collection}: CURRENT ${c.current ?? '(none)'}, object-store pointer ${c.pointer ?? '(none)'}\n`,
        );
        for (const v of c.versions) say(`  ${v === c.current ? '*' : ' '} ${v}\n`);
      }
    return 0;
  } finally {
    close();
  }
}
