import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import { parseManifest } from '../core/segments/manifest.js';
import {
  archiveKey,
  manifestKey,
  pointerKey,
  segmentsPrefix,
  uploadSnapshot,
} from '../core/snapshot/s3-snapshot.js';
import { versionDir } from '../core/snapshot/volume.js';
import type { CompactorMetrics } from './metrics.js';

/**
 * The S3 mirror of one collection's live version: uploaded after `everyPublishes` publishes or `everySeconds` (and
 * on shutdown), newest `keep` kept. Uploads are serialized; a failed one is retried with the next flush. A sealed
 * segment's archive (uploaded once, shared by every snapshot listing it) is deleted once no kept snapshot's manifest
 * lists it for `graceMs` (counted from when this process first saw it unlisted: a restart only delays it).
 */
export class S3Mirror {
  private publishes = 0;
  private lastUpload = Date.now();
  private unmirrored: string | undefined;
  /** When the oldest publish not yet in S3 happened (exported as the unmirrored-since gauge). */
  private unmirroredSince: number | undefined;
  private upload: Promise<void> = Promise.resolve();
  /** Segment archives no kept snapshot lists, and since when (ms). */
  private readonly unlisted = new Map<string, number>();

  constructor(
    private readonly c: Collection,
    private readonly deps: {
      objects: ObjectStore;
      bucket: string;
      root: string;
      log: Logger;
      metrics: CompactorMetrics;
      /** Run right before the pointer moves: a deposed holder's upload never moves it. */
      assertHeld: () => Promise<unknown>;
    },
    private readonly cfg: { everyPublishes: number; everySeconds: number; keep: number; graceMs?: number },
  ) {}

  published(version: string): void {
    this.unmirrored = version;
    this.publishes++;
    this.unmirroredSince ??= Date.now();
    this.reportUnmirrored();
  }

  /** Uploads the live version when due (or `force`), then trims S3 to the newest K. */
  async flush(force: boolean): Promise<void> {
    const version = this.unmirrored;
    if (!version) return;
    const due =
      force ||
      this.publishes >= this.cfg.everyPublishes ||
      Date.now() - this.lastUpload >= this.cfg.everySeconds * 1000;
    if (!due) return;
    this.unmirrored = undefined;
    this.publishes = 0;
    this.lastUpload = Date.now();
    const takenAt = this.lastUpload;
    const { objects, bucket, root, log } = this.deps;
    const job = this.upload.then(async () => {
      try {
        const { pointer, moved } = await uploadSnapshot(
          objects,
          bucket,
          this.c,
          version,
          versionDir(root, this.c, version),
          { assertHeld: this.deps.assertHeld },
        );
        this.deps.metrics.s3Uploads.inc({ collection: this.c });
        // A publish since this version was taken is still pending: count it from then (at most one upload early).
        this.unmirroredSince = this.unmirrored === undefined ? undefined : takenAt;
        this.reportUnmirrored();
        log.info({ version, pointer, moved }, 'S3 snapshot uploaded');
        await this.trim(pointer); // the pointer may name a newer version than ours: that one is kept
      } catch (err) {
        this.unmirrored ??= version;
        this.unmirroredSince ??= takenAt;
        this.reportUnmirrored();
        log.error({ err, version }, 'S3 snapshot upload failed; will retry');
      }
    });
    this.upload = job;
    if (force) await job;
  }

  /** Waits for an upload in progress (it never throws). */
  async settled(): Promise<void> {
    await this.upload;
  }

  private reportUnmirrored(): void {
    this.deps.metrics.s3UnmirroredSince.set({ collection: this.c }, (this.unmirroredSince ?? 0) / 1000);
  }

  private async trim(pointed: string): Promise<void> {
    const { objects, bucket } = this.deps;
    const prefix = `${this.c}/snapshot/timestamped/`;
    const objs = await objects.list(bucket, prefix);
    const versions = [...new Set(objs.map((o) => o.key.slice(prefix.length).split('/')[0]!))].sort();
    const keep = new Set([...versions.slice(-this.cfg.keep), pointed]);
    for (const o of objs) {
      const v = o.key.slice(prefix.length).split('/')[0]!;
      if (!keep.has(v) && o.key !== pointerKey(this.c) && o.key !== archiveKey(this.c, pointed))
        await objects.delete(bucket, o.key);
    }
    await this.collectSegments([...keep].filter((v) => versions.includes(v) || v === pointed));
  }

  /**
   * Deletes the segment archives that no kept snapshot's manifest lists, once unlisted for `graceMs`. A kept
   * snapshot whose manifest cannot be read (other than absent: a snapshot older than segments lists none) stops the
   * collection for this round: nothing is deleted on a partial view.
   */
  private async collectSegments(kept: string[]): Promise<void> {
    const { objects, bucket, log } = this.deps;
    const listed = new Set<string>();
    for (const v of kept) {
      if (!(await objects.head(bucket, manifestKey(this.c, v)))) continue;
      try {
        const info: unknown = JSON.parse(
          (await objects.getBuffer(bucket, manifestKey(this.c, v))).toString('utf8'),
        );
        for (const s of parseManifest(info, manifestKey(this.c, v)).segments) listed.add(s.id);
      } catch (err) {
        log.warn({ err, version: v }, 'S3 segment collection skipped: a kept manifest is unreadable');
        return;
      }
    }
    const prefix = segmentsPrefix(this.c);
    const now = Date.now();
    const seen = new Set<string>();
    for (const o of await objects.list(bucket, prefix)) {
      const id = o.key.slice(prefix.length).split('.')[0]!;
      if (listed.has(id)) continue;
      seen.add(id);
      const since = this.unlisted.get(id) ?? now;
      this.unlisted.set(id, since);
      if (now - since >= (this.cfg.graceMs ?? 0)) {
        await objects.delete(bucket, o.key);
        log.info({ key: o.key }, 'S3 segment archive no kept snapshot lists: deleted');
      }
    }
    for (const id of this.unlisted.keys()) if (!seen.has(id)) this.unlisted.delete(id);
  }
}
