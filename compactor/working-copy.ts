import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startChromaServer, type ChromaServer } from '../core/chroma/server.js';
import type { ServerRegistry } from './server-registry.js';
import {
  ChromaTimeoutError,
  ChromaVectorStore,
  CHROMA_CHUNK,
  DEFAULT_CHROMA_TIMEOUT_MS,
  HNSW_SYNC_THRESHOLD,
} from '../core/chroma/store.js';
import { receiptPrefix, type Collection } from '../core/contracts/ids.js';
import { TransientError } from '../core/errors.js';
import { emptyManifest, SEALED_DIR, type Manifest } from '../core/segments/manifest.js';
import { copyVersion, readManifest } from '../core/snapshot/volume.js';
import type { Metadata, VectorRecord } from '../core/ports/vector-store.js';
import { SealedSegments } from './sealed-segments.js';
import type { StoredRecord } from './upsert-plan.js';

/**
 * The compactor's private working copy of one collection, on local scratch (never the shared volume): the hot segment
 * (`dir`, the one Chroma server that takes writes) and the version's sealed segments (`sealed`, read-only servers on
 * scratch copies). Only this process opens them, so no second server can ever share a directory.
 *
 * Reads cover every segment; writes go to the hot segment only (docs/adr/0012-immutable-segments.md): a record live
 * in a sealed segment is deleted by a tombstone, replaced by a tombstone plus an add to hot, and its metadata updated
 * by moving it (vector, document, merged metadata) into hot under a tombstone. So every id is live in one segment.
 */
export class WorkingCopy {
  /** The server this copy writes to: its own child server, or (compactor/remote.ts) a remote one it never stops. */
  server: Pick<ChromaServer, 'url' | 'stop'> | undefined;
  readonly sealed: SealedSegments;
  store: ChromaVectorStore | undefined;
  private collectionId: string | undefined;
  private tenantDb: { tenant: string; database: string } | undefined;
  /**
   * Stored ids by receipt prefix (`IMAGE#…#RECEIPT#…`), read once per open and kept current by add/delete. Receipt
   * deletes and metadata recomputes select by the deterministic id, never by metadata: vectors written by the
   * original's first era hold `receipt_id` as a string, which `where receipt_id == <int>` never matches.
   */
  private byReceipt: Map<string, Set<string>> | undefined;

  constructor(
    readonly collection: Collection,
    readonly dir: string,
    private readonly registry?: ServerRegistry,
    /** Bound on each request to the server: a hung server fails the batch instead of holding it forever. */
    private readonly timeoutMs = DEFAULT_CHROMA_TIMEOUT_MS,
  ) {
    const start = (path: string) => (registry ? registry.start(path) : startChromaServer({ path }));
    this.sealed = new SealedSegments(collection, join(dirname(dir), SEALED_DIR), start, timeoutMs);
  }

  /**
   * Replaces the working copy with a copy of version `source` (or an empty collection), every file checked against
   * the version's digests, and starts its servers: the hot segment's, and one per sealed segment (copied beside it).
   */
  async reset(source: string | undefined): Promise<void> {
    await this.close();
    await this.sealed.clear();
    await rm(this.dir, { recursive: true, force: true });
    let manifest: Manifest = emptyManifest();
    if (source) {
      await copyVersion(source, this.dir);
      manifest = await readManifest(this.dir);
      if (manifest.segments.length) await rename(join(this.dir, SEALED_DIR), this.sealed.dir);
    } else await mkdir(this.dir, { recursive: true });
    await this.start();
    await this.sealed.openAll(manifest);
  }

  /** Stops every server (hot and sealed). */
  async close(): Promise<void> {
    await this.stop();
    await this.sealed.stop();
  }

  /** The manifest of what the working copy holds now (sealed segments and tombstones). */
  manifest(): Manifest {
    return this.sealed.manifest();
  }

  async start(): Promise<void> {
    if (this.server) return;
    const c = await this.open();
    if (c.configuration.hnsw?.sync_threshold !== HNSW_SYNC_THRESHOLD) {
      // A collection made elsewhere (older snapshot, original system): the new threshold applies from the next open,
      // whose first read replays the log tail and persists it; do that now rather than during a publish.
      await c.modify({ configuration: { hnsw: { sync_threshold: HNSW_SYNC_THRESHOLD } } });
      await this.stop();
      await this.open();
      await this.count();
    }
  }

  protected async open() {
    const { server, store } = await this.connect();
    this.server = server;
    this.store = store;
    const c = await store.collection(this.collection);
    this.collectionId = c.id;
    this.tenantDb = { tenant: c.tenant, database: c.database };
    return c;
  }

  /** A child server on `dir` and a store on it (compactor/remote.ts connects to a remote server instead). */
  protected async connect(): Promise<{
    server: Pick<ChromaServer, 'url' | 'stop'>;
    store: ChromaVectorStore;
  }> {
    const server = this.registry
      ? await this.registry.start(this.dir)
      : await startChromaServer({ path: this.dir });
    return { server, store: new ChromaVectorStore(server.url, { timeoutMs: this.timeoutMs }) };
  }

  /**
   * SIGTERM the hot segment's server and wait: Chroma flushes on a clean stop, so the directory is a complete portable
   * snapshot. The sealed segments' servers keep running (close() stops them too).
   */
  async stop(): Promise<void> {
    this.byReceipt = undefined;
    const s = this.server;
    this.server = undefined;
    this.store = undefined;
    if (s) await s.stop();
  }

  private get vs(): ChromaVectorStore {
    if (!this.store) throw new TransientError(`working copy ${this.collection} is not open`);
    return this.store;
  }

  /**
   * Adds new ids. Posts straight to the server's add endpoint with embeddings packed as base64 float32 by Buffer:
   * the JS client packs them one byte at a time (docs/adr/0005-chroma-distance-and-client.md), which costs more than
   * the server's work for small dimensions.
   */
  async add(records: VectorRecord[]): Promise<void> {
    if (!this.server || !this.collectionId || !this.tenantDb)
      throw new TransientError('working copy is not open');
    const url = `${this.server.url}/api/v2/tenants/${this.tenantDb.tenant}/databases/${this.tenantDb.database}/collections/${this.collectionId}/add`;
    for (let i = 0; i < records.length; i += CHROMA_CHUNK) {
      const chunk = records.slice(i, i + CHROMA_CHUNK);
      const body = JSON.stringify({
        ids: chunk.map((r) => r.id),
        embeddings: chunk.map((r) =>
          Buffer.from(r.embedding.buffer, r.embedding.byteOffset, r.embedding.byteLength).toString('base64'),
        ),
        documents: chunk.map((r) => r.document),
        metadatas: chunk.map((r) => withoutNulls(r.metadata)),
      });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      }).catch((err: unknown) => {
        if ((err as Error).name === 'TimeoutError')
          throw new ChromaTimeoutError(`add ${this.collection}`, this.server?.url ?? url, this.timeoutMs);
        throw err;
      });
      if (!res.ok)
        throw new TransientError(`chroma add failed: ${res.status} ${await res.text()}`, {
          collection: this.collection,
        });
      await res.arrayBuffer().catch(() => undefined);
      if (this.byReceipt) for (const r of chunk) indexId(this.byReceipt, r.id);
    }
  }

  /** Deletes from the hot segment, and tombstones the ids live in a sealed one. */
  async delete(ids: string[]): Promise<void> {
    if (!ids.length) return;
    const inHot = await this.hotIds(ids);
    if (inHot.size) await this.vs.delete(this.collection, [...inHot]);
    await this.sealed.tombstone(ids.filter((id) => !inHot.has(id)));
    if (this.byReceipt) for (const id of ids) this.byReceipt.get(receiptOf(id) ?? '')?.delete(id);
  }

  /**
   * Merges metadata (Chroma's update). A record live in a sealed segment is moved into hot with the merged metadata
   * under a tombstone: the sealed segment never changes, and where-filters of readers see the new metadata.
   */
  async updateMetadata(updates: { id: string; metadata: Metadata }[]): Promise<void> {
    if (!updates.length) return;
    const inHot = await this.hotIds(updates.map((u) => u.id));
    const hot = updates.filter((u) => inHot.has(u.id));
    if (hot.length) {
      await this.vs.updateMetadata(
        this.collection,
        hot.map((u) => ({ id: u.id, metadata: withoutNulls(u.metadata) })),
      );
    }
    const rest = updates.filter((u) => !inHot.has(u.id));
    const sealed = await this.sealed.getByIds(rest.map((u) => u.id));
    const moved = rest.flatMap((u) => {
      const ex = sealed.get(u.id);
      if (!ex?.embedding) return [];
      const metadata = withoutNulls({ ...ex.metadata, ...withoutNulls(u.metadata) });
      return [{ id: u.id, document: ex.document, metadata, embedding: ex.embedding }];
    });
    await this.sealed.tombstone(moved.map((r) => r.id));
    await this.add(moved);
  }

  /** Records by id, live in any segment, with their embeddings. Missing ids are simply absent. */
  async getByIds(ids: string[]): Promise<Map<string, StoredRecord>> {
    const out = await this.hotGetByIds(ids);
    const rest = ids.filter((id) => !out.has(id));
    for (const [id, r] of await this.sealed.getByIds(rest)) {
      out.set(id, {
        id,
        document: r.document,
        metadata: r.metadata,
        ...(r.embedding ? { embedding: r.embedding } : {}),
      });
    }
    return out;
  }

  private async hotGetByIds(ids: string[]): Promise<Map<string, StoredRecord>> {
    const out = new Map<string, StoredRecord>();
    for (let i = 0; i < ids.length; i += CHROMA_CHUNK) {
      const res = await this.vs.get(this.collection, {
        ids: ids.slice(i, i + CHROMA_CHUNK),
        include: ['embeddings', 'documents', 'metadatas'],
      });
      res.ids.forEach((id, j) =>
        out.set(id, {
          id,
          document: res.documents[j] ?? '',
          metadata: res.metadatas[j] ?? {},
          ...(res.embeddings ? { embedding: res.embeddings[j] } : {}),
        }),
      );
    }
    return out;
  }

  /** Which of `ids` the collection holds: ids only, no documents or metadata read (a tenth of getByIds' time). */
  async presentIds(ids: string[]): Promise<Set<string>> {
    const out = await this.hotIds(ids);
    for (const id of (await this.sealed.whereLive(ids.filter((i) => !out.has(i)))).keys()) out.add(id);
    return out;
  }

  private async hotIds(ids: string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < ids.length; i += CHROMA_CHUNK) {
      const res = await this.vs.get(this.collection, { ids: ids.slice(i, i + CHROMA_CHUNK), include: [] });
      for (const id of res.ids) out.add(id);
    }
    return out;
  }

  /** Ids of one receipt's vectors, by id prefix. */
  async receiptIds(imageId: string, receiptId: number): Promise<string[]> {
    if (!this.byReceipt) {
      const index = new Map<string, Set<string>>();
      for (let offset = 0; ; offset += ID_PAGE) {
        const res = await this.vs.get(this.collection, { include: [], limit: ID_PAGE, offset });
        for (const id of res.ids) indexId(index, id);
        if (res.ids.length < ID_PAGE) break;
      }
      for await (const ids of this.sealed.liveIds(ID_PAGE)) for (const id of ids) indexId(index, id);
      this.byReceipt = index;
    }
    return [...(this.byReceipt.get(receiptPrefix(imageId, receiptId)) ?? [])];
  }

  /** Live records in all segments. */
  async count(): Promise<number> {
    return (await this.hotCount()) + this.sealed.count();
  }

  /** Records in the hot segment (what the next seal folds into a sealed one). */
  async hotCount(): Promise<number> {
    return this.vs.count(this.collection);
  }

  /**
   * One real nearest-neighbour query on the hot segment (loads its index: later batches do not pay for it); nothing
   * to do when it is empty (the sealed segments were queried when they were sealed).
   */
  async probeQuery(): Promise<void> {
    const one = await this.vs.get(this.collection, { limit: 1, include: ['embeddings'] });
    const e = one.embeddings?.[0];
    if (!e) return;
    const hits = await this.vs.query(this.collection, e, 1);
    if (hits.length !== 1)
      throw new TransientError(`working copy ${this.collection}: query returned nothing`);
  }

  /** Dimension of the stored vectors, or undefined when the collection is empty. */
  async dimension(): Promise<number | undefined> {
    const res = await this.vs.get(this.collection, { limit: 1, include: ['embeddings'] });
    return res.embeddings?.[0]?.length ?? (await this.sealed.dimension());
  }
}

/** Opens a stopped Chroma directory with a throwaway server and checks it serves: count, a query, and given ids. */
export async function validateDirectory(
  dir: string,
  collection: Collection,
  expect: { count: number; ids: string[] },
  registry?: ServerRegistry,
): Promise<void> {
  const server = registry ? await registry.start(dir) : await startChromaServer({ path: dir });
  try {
    const store = new ChromaVectorStore(server.url);
    const count = await store.count(collection);
    if (count !== expect.count) {
      throw new TransientError(`validation of ${dir}: count ${count}, expected ${expect.count}`, { dir });
    }
    if (count > 0) {
      const one = await store.get(collection, { limit: 1, include: ['embeddings'] });
      const hits = await store.query(collection, one.embeddings![0]!, 1);
      if (hits.length !== 1)
        throw new TransientError(`validation of ${dir}: query returned nothing`, { dir });
    }
    for (let i = 0; i < expect.ids.length; i += CHROMA_CHUNK) {
      const ids = expect.ids.slice(i, i + CHROMA_CHUNK);
      const got = await store.get(collection, { ids, include: [] });
      if (got.ids.length !== new Set(ids).size) {
        const have = new Set(got.ids);
        const missing = ids.filter((id) => !have.has(id));
        throw new TransientError(
          `validation of ${dir}: ${missing.length} merged id(s) missing, e.g. ${missing[0]}`,
          { dir },
        );
      }
    }
  } finally {
    await server.stop();
  }
}

const ID_PAGE = 10_000;
const receiptOf = (id: string) => /^IMAGE#[^#]+#RECEIPT#\d{5}(?=#)/.exec(id)?.[0];

function indexId(index: Map<string, Set<string>>, id: string): void {
  const r = receiptOf(id);
  if (!r) return; // not a receipt vector id: no receipt selects it
  let set = index.get(r);
  if (!set) index.set(r, (set = new Set()));
  set.add(id);
}

export function withoutNulls(m: Metadata): Metadata {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null && v !== undefined));
}

export const workDirFor = (root: string, c: Collection) => join(root, c);
