import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startChromaServer, type ChromaServer } from '../core/chroma/server.js';
import { ChromaVectorStore } from '../core/chroma/store.js';
import { COLLECTIONS, type Collection } from '../core/contracts/ids.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import { restoreSnapshot } from '../core/snapshot/s3-snapshot.js';
import { copyCurrentTo } from '../core/snapshot/volume.js';

/** The live versions of both collections, copied to scratch and served read-only by one Chroma server each. */
export interface SnapshotView {
  versions: Partial<Record<Collection, string>>;
  origins: Partial<Record<Collection, 'volume' | 'object-store'>>;
  store(c: Collection): ChromaVectorStore | undefined;
  close(): Promise<void>;
}

/**
 * Opens CURRENT of each collection the way a worker does (copy to scratch, then a Chroma server on the copy — never
 * on the volume directory, which stays immutable). Without CURRENT on the volume, the object-store mirror's
 * latest pointer is restored instead, when a mirror is given; a collection with neither is absent from the view.
 */
export async function openSnapshotView(
  volume: string | undefined,
  scratch: string,
  mirror?: { store: ObjectStore; bucket: string },
): Promise<SnapshotView> {
  const dir = join(scratch, `view-${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const servers: ChromaServer[] = [];
  const stores: Partial<Record<Collection, ChromaVectorStore>> = {};
  const versions: Partial<Record<Collection, string>> = {};
  const origins: SnapshotView['origins'] = {};
  const close = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(
      COLLECTIONS.map(async (c) => {
        let found: { version: string; dir: string } | undefined = volume
          ? await copyCurrentTo(volume, c, dir)
          : undefined;
        if (found) origins[c] = 'volume';
        else if (mirror) {
          const target = join(dir, `${c}-mirror`);
          const restored = await restoreSnapshot(mirror.store, mirror.bucket, c, target);
          if (restored) {
            found = { version: restored.version, dir: target };
            origins[c] = 'object-store';
          }
        }
        if (!found) return;
        const server = await startChromaServer({ path: found.dir });
        servers.push(server);
        stores[c] = new ChromaVectorStore(server.url);
        versions[c] = found.version;
      }),
    );
  } catch (err) {
    await close();
    throw err;
  }
  return { versions, origins, store: (c) => stores[c], close };
}
