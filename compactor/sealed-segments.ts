import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChromaServer } from '../core/chroma/server.js';
import { CHROMA_CHUNK, ChromaVectorStore } from '../core/chroma/store.js';
import type { Collection } from '../core/contracts/ids.js';
import { TransientError } from '../core/errors.js';
import { emptyManifest, type Manifest, type SealedSegment } from '../core/segments/manifest.js';
import type { StoredRecord } from './upsert-plan.js';

/** One sealed segment open in the working copy: its scratch copy's server and the ids it no longer holds live. */
interface OpenSealed {
  readonly meta: SealedSegment;
  readonly server: ChromaServer;
  readonly store: ChromaVectorStore;
  readonly tombstones: Set<string>;
}

/**
 * The sealed segments of the compactor's working copy (docs/adr/0012-immutable-segments.md): scratch copies under
 * `{dir}/{id}`, each served read-only by its own Chroma server, plus the tombstones the working copy has added. Only
 * reads go to these servers; every write lands in the hot segment, so the copies never need to go back to the volume
 * (each version links the volume's bytes of the segment, which never change).
 */
export class SealedSegments {
  private open: OpenSealed[] = [];

  constructor(
    private readonly collection: Collection,
    /** Parent of the scratch copies (`{workRoot}/{collection}/sealed`). */
    readonly dir: string,
    private readonly start: (path: string) => Promise<ChromaServer>,
    private readonly timeoutMs: number,
  ) {}

  /** Starts a server on each segment of `manifest` (scratch copies already under `dir`), in parallel. */
  async openAll(manifest: Manifest): Promise<void> {
    await this.stop();
    const started = await Promise.allSettled(manifest.segments.map((s) => this.start(join(this.dir, s.id))));
    const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.all(servers.map((s) => s.stop()));
      throw failed.reason;
    }
    this.open = manifest.segments.map((meta, i) =>
      this.entry(meta, servers[i]!, manifest.tombstones[meta.id]),
    );
  }

  /** A segment sealed from the hot segment just now (its scratch copy at `{dir}/{id}`): served from here on. */
  async add(meta: SealedSegment): Promise<void> {
    this.open.push(this.entry(meta, await this.start(join(this.dir, meta.id)), []));
  }

  /**
   * A merged segment (compactor/segment-merge.ts) takes the place of `inputs`: its directory `from` moves to `{dir}/{id}` and
   * is served from here on with `tombstones`, after its real count (Chroma's) is checked against its record; the
   * inputs' servers stop and their scratch copies go.
   */
  async replace(inputs: string[], meta: SealedSegment, from: string, tombstones: string[]): Promise<void> {
    const gone = new Set(inputs);
    const scratch = join(this.dir, meta.id);
    await mkdir(this.dir, { recursive: true });
    await rm(scratch, { recursive: true, force: true });
    await rename(from, scratch);
    const entry = this.entry(meta, await this.start(scratch), tombstones);
    const real = await entry.store.count(this.collection).catch(async (err: unknown) => {
      await entry.server.stop();
      throw err;
    });
    if (real !== meta.count) {
      await entry.server.stop();
      throw new TransientError(
        `merged segment ${meta.id} of ${this.collection}: ${real} records, expected ${meta.count}`,
      );
    }
    const at = this.open.findIndex((s) => gone.has(s.meta.id));
    const old = this.open.filter((s) => gone.has(s.meta.id));
    const kept = this.open.filter((s) => !gone.has(s.meta.id));
    kept.splice(
      at < 0 ? kept.length : this.open.slice(0, at).filter((s) => !gone.has(s.meta.id)).length,
      0,
      entry,
    );
    this.open = kept;
    await Promise.all(old.map((s) => s.server.stop()));
    for (const s of old)
      if (s.meta.id !== meta.id) await rm(join(this.dir, s.meta.id), { recursive: true, force: true });
  }

  private entry(meta: SealedSegment, server: ChromaServer, tombstones: string[] = []): OpenSealed {
    const store = new ChromaVectorStore(server.url, { timeoutMs: this.timeoutMs });
    return { meta, server, store, tombstones: new Set(tombstones) };
  }

  async stop(): Promise<void> {
    const open = this.open;
    this.open = [];
    await Promise.all(open.map((s) => s.server.stop()));
  }

  /** Stops every server and removes the scratch copies. */
  async clear(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The manifest the next version records: the segments, oldest first, and their tombstones. */
  manifest(): Manifest {
    const m = emptyManifest();
    for (const s of this.open) {
      m.segments.push(s.meta);
      if (s.tombstones.size) m.tombstones[s.meta.id] = [...s.tombstones];
    }
    return m;
  }

  /** Live records (not tombstoned) among `ids`, with their embeddings, and the segment holding each. */
  async getByIds(ids: string[]): Promise<Map<string, StoredRecord & { segment: string }>> {
    const out = new Map<string, StoredRecord & { segment: string }>();
    if (!ids.length) return out;
    for (const s of this.open) {
      for (let i = 0; i < ids.length; i += CHROMA_CHUNK) {
        const res = await s.store.get(this.collection, {
          ids: ids.slice(i, i + CHROMA_CHUNK),
          include: ['embeddings', 'documents', 'metadatas'],
        });
        res.ids.forEach((id, j) => {
          if (s.tombstones.has(id)) return;
          out.set(id, {
            id,
            segment: s.meta.id,
            document: res.documents[j] ?? '',
            metadata: res.metadatas[j] ?? {},
            ...(res.embeddings ? { embedding: res.embeddings[j] } : {}),
          });
        });
      }
    }
    return out;
  }

  /** Which of `ids` are live in a sealed segment, and in which (ids only). */
  async whereLive(ids: string[]): Promise<Map<string, OpenSealed>> {
    const out = new Map<string, OpenSealed>();
    if (!ids.length) return out;
    for (const s of this.open) {
      for (let i = 0; i < ids.length; i += CHROMA_CHUNK) {
        const res = await s.store.get(this.collection, { ids: ids.slice(i, i + CHROMA_CHUNK), include: [] });
        for (const id of res.ids) if (!s.tombstones.has(id)) out.set(id, s);
      }
    }
    return out;
  }

  /** Tombstones `ids` wherever they are live; returns how many were. */
  async tombstone(ids: string[]): Promise<number> {
    const where = await this.whereLive(ids);
    for (const [id, s] of where) s.tombstones.add(id);
    return where.size;
  }

  /** Every live id of every segment (paged), for the receipt index. */
  async *liveIds(page: number): AsyncGenerator<string[]> {
    for (const s of this.open) {
      for (let offset = 0; ; offset += page) {
        const res = await s.store.get(this.collection, { include: [], limit: page, offset });
        yield res.ids.filter((id) => !s.tombstones.has(id));
        if (res.ids.length < page) break;
      }
    }
  }

  /** Live records of all sealed segments: each segment's count minus its tombstones. */
  count(): number {
    return this.open.reduce((n, s) => n + s.meta.count - s.tombstones.size, 0);
  }

  get size(): number {
    return this.open.length;
  }

  /** Dimension of the stored vectors (the first segment's), undefined without a segment. */
  async dimension(): Promise<number | undefined> {
    const s = this.open[0];
    if (!s) return undefined;
    const res = await s.store.get(this.collection, { limit: 1, include: ['embeddings'] });
    const d = res.embeddings?.[0]?.length;
    if (d === undefined && s.meta.count > 0)
      throw new TransientError(`sealed segment ${s.meta.id} of ${this.collection}: no vector to read`);
    return d;
  }
}
