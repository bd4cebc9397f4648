import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { COLLECTIONS, type Collection } from '../core/contracts/ids.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import { restoreSnapshot } from '../core/snapshot/s3-snapshot.js';
import { openSegments, type OpenSegments } from '../core/segments/open.js';
import type { SegmentedStore } from '../core/segments/segmented-store.js';
import { copyCurrentTo, readCurrent, VersionDamagedError } from '../core/snapshot/volume.js';

/**
 * The live versions of the collections asked for, copied to scratch and served read-only: one Chroma server per
 * segment, read through one SegmentedStore per collection (core/segments/).
 */
export interface SnapshotView {
  versions: Partial<Record<Collection, string>>;
  origins: Partial<Record<Collection, 'volume' | 'object-store'>>;
  /** Collections that could not be opened (with `partial`), and why: a damaged live version, Chroma not starting… */
  failures: Partial<Record<Collection, SnapshotOpenError>>;
  store(c: Collection): SegmentedStore | undefined;
  close(): Promise<void>;
}

/** A live version that could not be opened, with the collection and (when known) the version it concerns. */
export class SnapshotOpenError extends PipelineError {
  constructor(
    readonly collection: Collection,
    readonly version: string | undefined,
    cause: unknown,
  ) {
    const damaged = cause instanceof VersionDamagedError;
    const detail = damaged
      ? `damaged: ${cause.problem}; repair it with: embedctl snapshot restore ${collection}`
      : errorMessage(cause);
    super(
      damaged ? 'SnapshotDamaged' : 'Transient',
      `${`${collection} ${version ?? ''}`.trimEnd()} is ${damaged ? '' : 'unreadable: '}${detail}`,
      { collection, version },
      { cause },
    );
    this.detail = detail;
  }

  /** What is wrong, without the collection and version (which the message starts with). */
  readonly detail: string;
}

/**
 * Opens CURRENT of each collection the way a worker does (copy to scratch, then a Chroma server on the copy — never
 * on the volume directory, which stays immutable). Without CURRENT on the volume, the object-store mirror's
 * latest pointer is restored instead, when a mirror is given; a collection with neither is absent from the view.
 *
 * Collections open side by side and independently: every one is settled (server started and recorded, or failed)
 * before the view returns or throws, so a failure never leaves a server or a scratch directory behind. A collection
 * that fails makes the whole open fail (after closing the others), unless `partial`: then it is in `failures` and
 * the others answer.
 */
export async function openSnapshotView(
  volume: string | undefined,
  scratch: string,
  mirror?: { store: ObjectStore; bucket: string },
  opts: { collections?: readonly Collection[]; partial?: boolean } = {},
): Promise<SnapshotView> {
  const dir = join(scratch, `view-${process.pid}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const opened: OpenSegments[] = [];
  const stores: Partial<Record<Collection, SegmentedStore>> = {};
  const versions: Partial<Record<Collection, string>> = {};
  const origins: SnapshotView['origins'] = {};
  const failures: SnapshotView['failures'] = {};
  const close = async () => {
    await Promise.all(opened.splice(0).map((o) => o.close()));
    await rm(dir, { recursive: true, force: true });
  };
  const open = async (c: Collection) => {
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
    const segments = await openSegments(found.dir);
    opened.push(segments);
    stores[c] = segments.store;
    versions[c] = found.version;
  };
  const wanted = opts.collections ?? COLLECTIONS;
  const settled = await Promise.allSettled(wanted.map(open));
  try {
    for (const [i, r] of settled.entries()) {
      if (r.status === 'fulfilled') continue;
      const c = wanted[i]!;
      const version = volume ? await readCurrent(volume, c).catch(() => undefined) : undefined;
      failures[c] = new SnapshotOpenError(c, version, r.reason);
      delete origins[c];
    }
  } catch (err) {
    await close();
    throw err;
  }
  const first = Object.values(failures)[0];
  if (first && !opts.partial) {
    await close();
    throw first;
  }
  return { versions, origins, failures, store: (c) => stores[c], close };
}
