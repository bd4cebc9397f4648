import { join } from 'node:path';
import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import { ensureLiveIntact } from '../core/snapshot/repair.js';
import { InvalidVersionIdError } from '../core/snapshot/version-id.js';
import { readCurrent, VersionDamagedError, versionDir } from '../core/snapshot/volume.js';
import type { CompactorDeps } from './config.js';
import type { WorkingCopy } from './working-copy.js';

export interface OpenLiveContext {
  readonly c: Collection;
  readonly wc: WorkingCopy;
  readonly deps: Pick<CompactorDeps, 'root' | 'objects' | 'bucket' | 'workRoot'>;
  readonly log: Logger;
  fence(c: Collection): Promise<number>;
}

/**
 * Resets the working copy to CURRENT, repairing CURRENT first when its copy shows it damaged (or it is missing):
 * the newest intact version on the volume or archive in S3 (core/snapshot/repair.ts); with neither, the collection
 * starts empty. Returns the version the working copy now holds (its base), undefined for an empty collection.
 */
export async function openLive(ctx: OpenLiveContext): Promise<string | undefined> {
  const { root, objects, bucket, workRoot } = ctx.deps;
  const { c, wc, log } = ctx;
  // A CURRENT that names no valid version id is left to ensureLiveIntact, which repairs it like a missing one.
  const current = await readCurrent(root, c).catch((err: unknown) => {
    if (err instanceof InvalidVersionIdError) return undefined;
    throw err;
  });
  let known: { version: string; problem: string } | undefined;
  if (current) {
    try {
      await wc.reset(versionDir(root, c, current));
      return current;
    } catch (err) {
      if (!(err instanceof VersionDamagedError)) throw err;
      known = { version: current, problem: err.problem };
      log.error({ version: current, problem: err.problem }, 'the live version is damaged; repairing it');
    }
  }
  const state = await ensureLiveIntact({
    root,
    collection: c,
    mirror: { store: objects, bucket },
    workDir: join(workRoot, c),
    beforeSwitch: () => ctx.fence(c),
    log,
    ...(known ? { known } : {}),
  });
  if (state.kind === 'empty') {
    log.info('no live version and no S3 snapshot: starting an empty collection');
    await wc.reset(undefined);
    return undefined;
  }
  if (state.kind === 'repaired' && state.from === 'mirror' && !known)
    log.info({ version: state.version }, 'volume bootstrapped from the S3 snapshot');
  await wc.reset(versionDir(root, c, state.version));
  return state.version;
}
