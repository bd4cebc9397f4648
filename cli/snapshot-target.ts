import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObjectStore } from '../core/ports/object-store.js';
import { openLocal, VECTORS_BUCKET } from '../local/home.js';
import { openSnapshotView } from '../local/snapshot-view.js';
import { cloudVolume } from './cloud.js';
import type { VolumeFlags } from './options.js';
import { existingHome } from './usage.js';

/**
 * The snapshot volume a command reads or repairs, with its object-store mirror: the home's (local mode; also its
 * compactor lease file), or the deployed one (--cloud, cli/cloud.ts).
 */
export function snapshotTarget(f: VolumeFlags): {
  root?: string;
  mirror?: { store: ObjectStore; bucket: string };
  lease?: string;
  close(): void;
} {
  if (f.cloud) return { ...cloudVolume(f.chromaRoot), close: () => {} };
  const ports = openLocal(existingHome(f.home));
  return {
    root: ports.paths.volume,
    mirror: { store: ports.store, bucket: VECTORS_BUCKET },
    lease: ports.paths.lease,
    close: ports.close,
  };
}

/** The live versions opened with Chroma (local/snapshot-view.ts) from a scratch copy that `cleanup` removes. */
export async function openView(f: VolumeFlags, opts: Parameters<typeof openSnapshotView>[3] = {}) {
  const target = snapshotTarget(f);
  const scratch = await mkdtemp(join(tmpdir(), 'embedctl-view-'));
  try {
    const view = await openSnapshotView(target.root, scratch, target.mirror, opts);
    return {
      view,
      cleanup: async () => {
        target.close();
        await rm(scratch, { recursive: true, force: true });
      },
    };
  } catch (err) {
    target.close();
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}
