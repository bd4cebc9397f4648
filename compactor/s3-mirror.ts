import type { Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import { archiveKey, pointerKey, uploadSnapshot } from '../core/snapshot/s3-snapshot.js';
import { versionDir } from '../core/snapshot/volume.js';
import type { CompactorMetrics } from './metrics.js';

/**
 * The S3 mirror of one collection's live version: uploaded after `everyPublishes` publishes or `everySeconds` (and
 * on shutdown), newest `keep` kept. Uploads are serialized; a failed one is retried with the next flush.
 */
export class S3Mirror {
  private publishes = 0;
  private lastUpload = Date.now();
  private unmirrored: string | undefined;
  /** When the oldest publish not yet in S3 happened (exported as the unmirrored-since gauge). */
  private unmirroredSince: number | undefined;
  private upload: Promise<void> = Promise.resolve();

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
    private readonly cfg: { everyPublishes: number; everySeconds: number; keep: number },
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
  }
}
