import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { LinesIndex, LinesIndexSource } from '../ports/lines-index.js';
import type { ObjectStore } from '../ports/object-store.js';
import { restoreSnapshot } from '../snapshot/s3-snapshot.js';
import { copyCurrentTo } from '../snapshot/volume.js';
import { openSegments, type OpenSegments } from '../segments/open.js';

export interface SnapshotSourceOptions {
  /** Root of the shared volume (read only; never opened by Chroma). Undefined: skip the volume. */
  chromaRoot?: string;
  /** Local scratch directory the snapshot is copied to. */
  scratchDir: string;
  /** S3 fallback when the volume holds no CURRENT. */
  objectStore?: ObjectStore;
  vectorsBucket?: string;
  log?: Logger;
}

/**
 * Copies CURRENT of the volume's `lines` collection to local scratch (or restores the S3 snapshot when the volume is
 * empty) and serves the copy (a Chroma server per segment) — never on the volume directory itself: Chroma is unsafe on NFS and
 * two servers on one directory corrupt it silently.
 */
export class SnapshotLinesIndexSource implements LinesIndexSource {
  constructor(private readonly o: SnapshotSourceOptions) {}

  async open(): Promise<LinesIndex | undefined> {
    const t0 = performance.now();
    await mkdir(this.o.scratchDir, { recursive: true });
    let found: { version: string; dir: string; origin: 'volume' | 's3' } | undefined;
    if (this.o.chromaRoot) {
      const copy = await copyCurrentTo(this.o.chromaRoot, 'lines', this.o.scratchDir);
      if (copy) found = { ...copy, origin: 'volume' };
    }
    if (!found && this.o.objectStore && this.o.vectorsBucket) {
      const dir = join(this.o.scratchDir, 'lines-s3');
      await rm(dir, { recursive: true, force: true });
      const restored = await restoreSnapshot(this.o.objectStore, this.o.vectorsBucket, 'lines', dir);
      if (restored) found = { version: restored.version, dir, origin: 's3' };
    }
    if (!found) return undefined;
    let segments: OpenSegments | undefined;
    try {
      // One server per segment of the version, read as one store (core/segments/segmented-store.ts).
      segments = await openSegments(found.dir);
      const { store } = segments;
      this.o.log?.info(
        { version: found.version, origin: found.origin, ms: Math.round(performance.now() - t0) },
        'lines snapshot opened',
      );
      const dir = found.dir;
      const open = segments;
      return {
        version: found.version,
        origin: found.origin,
        store,
        close: async () => {
          await open.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      await segments?.close();
      await rm(found.dir, { recursive: true, force: true });
      throw err;
    }
  }
}
