import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ENV } from '../../../core/config/env.js';
import { DEFAULT_CONFIG } from '../../../compactor/compactor.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { ConfigError } from '../../../core/errors.js';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import {
  listVersions,
  pruneVersions,
  readCurrent,
  removeLeftovers,
  versionsDir,
} from '../../../core/snapshot/volume.js';
import { LOCAL_KEEP_VERSIONS } from '../../../local/home.js';
import {
  chromaRootOption,
  collectionArg,
  homeOption,
  intArg,
  jsonOption,
  type VolumeFlags,
} from '../../options.js';
import { printJson, say } from '../../print.js';
import { snapshotTarget } from '../../snapshot-target.js';
import { guarded } from '../../usage.js';
import { withWriterLease } from './writer-lease.js';

type PruneFlags = VolumeFlags & { keep?: number; json?: boolean };

export function register(snapshot: Command): void {
  snapshot
    .command('prune')
    .description('remove old versions from the volume: keeps the newest --keep and CURRENT (never removed)')
    .argument('[collection]', 'lines or words (default: both)')
    .option(
      '--keep <n>',
      `versions to keep besides CURRENT, newest first (default: ${LOCAL_KEEP_VERSIONS} locally, ${DEFAULT_CONFIG.keepVersions} with --cloud, as the compactor keeps)`,
      intArg(0),
    )
    .addOption(homeOption())
    .option(
      '--cloud',
      `the volume at ${ENV.CHROMA_ROOT} (not fenced: only versions older than ${DEFAULT_CONFIG.graceMs / 60_000} minutes go)`,
    )
    .addOption(chromaRootOption())
    .addOption(jsonOption())
    .action((collection: string | undefined, f: PruneFlags) => guarded(() => prune(collection, f)));
}

async function prune(collection: string | undefined, f: PruneFlags): Promise<number> {
  const keep = f.keep ?? (f.cloud ? DEFAULT_CONFIG.keepVersions : LOCAL_KEEP_VERSIONS);
  const collections = collection ? [collectionArg(collection)] : COLLECTIONS;
  const { root, lease, close } = snapshotTarget(f);
  try {
    if (!root) throw new ConfigError(`no volume: set ${ENV.CHROMA_ROOT} or --chroma-root`);
    // Locally the compactor's lease is held, so nothing publishes meanwhile and readers copy only CURRENT:
    // no grace period. In the cloud, nothing younger than the compactor's grace period is touched.
    const graceMs = lease ? 0 : DEFAULT_CONFIG.graceMs;
    const pruneAll = async () => {
      const results = [];
      for (const c of collections) {
        const before = await dirBytes(versionsDir(root, c));
        const removed = await pruneVersions(root, c, { keep, graceMs });
        const leftovers = await removeLeftovers(root, c, { graceMs });
        results.push({
          collection: c,
          current: await readCurrent(root, c),
          kept: await listVersions(root, c),
          removed,
          leftovers,
          freedBytes: before - (await dirBytes(versionsDir(root, c))),
        });
      }
      return results;
    };
    const out = lease
      ? await withWriterLease(new FileLeaseBackend(lease), 'prune', 0, pruneAll)
      : await pruneAll();
    if (f.json) printJson(out);
    else
      for (const r of out) {
        say(
          `${r.collection}: removed ${r.removed.length} version(s)${r.leftovers.length ? ` and ${r.leftovers.length} leftover dir(s)` : ''}, freed ${(r.freedBytes / 1e6).toFixed(1)} MB; kept ${r.kept.length} (CURRENT ${r.current ?? '(none)'})\n`,
        );
      }
    return 0;
  } finally {
    close();
  }
}

/** Bytes of the files under `dir` (0 when it does not exist). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await stat(p).catch(() => undefined))?.size ?? 0;
    }
  };
  await walk(dir);
  return total;
}
