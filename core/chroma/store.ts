import { ChromaClient, type Collection as ChromaCollection, type Metadata as ChromaMetadata } from 'chromadb';
import type { Collection } from '../contracts/ids.js';
import type { Metadata, QueryHit, VectorRecord, VectorStore } from '../ports/vector-store.js';

/** Largest batch per call: below Chroma's 5,461-record limit and its 40 MiB payload limit at 1536 dims. */
export const CHROMA_CHUNK = 1000;

/**
 * Chroma persists its HNSW index only after this many new records (default 1,000) and replays the rest from its log,
 * at ≈ 4 ms per vector, on every reopen (chroma-core/chroma#6975, #7463). The compactor reopens its working copy on
 * every publish, so it persists after every merge of a receipt or more: a reopen then only loads the index.
 */
export const HNSW_SYNC_THRESHOLD = 32;

/**
 * VectorStore over one Chroma server. Collections are created without an embedding function and with squared L2
 * distance (the original system's default), so its snapshots can be imported.
 */
export class ChromaVectorStore implements VectorStore {
  private readonly client: ChromaClient;
  private readonly collections = new Map<Collection, Promise<ChromaCollection>>();

  constructor(url: string) {
    const u = new URL(url);
    this.client = new ChromaClient({ host: u.hostname, port: Number(u.port), ssl: u.protocol === 'https:' });
  }

  collection(name: Collection): Promise<ChromaCollection> {
    let c = this.collections.get(name);
    if (!c) {
      c = this.client.getOrCreateCollection({
        name,
        embeddingFunction: null,
        configuration: { hnsw: { space: 'l2', sync_threshold: HNSW_SYNC_THRESHOLD } },
        metadata: { description: `Collection: ${name}` },
      });
      c.catch(() => this.collections.delete(name));
      this.collections.set(name, c);
    }
    return c;
  }

  async upsert(collection: Collection, records: VectorRecord[]): Promise<void> {
    const c = await this.collection(collection);
    for (let i = 0; i < records.length; i += CHROMA_CHUNK) {
      const chunk = records.slice(i, i + CHROMA_CHUNK);
      await c.upsert({
        ids: chunk.map((r) => r.id),
        embeddings: chunk.map((r) => Array.from(r.embedding)),
        documents: chunk.map((r) => r.document),
        metadatas: chunk.map((r) => withoutNulls(r.metadata)),
      });
    }
  }

  async updateMetadata(collection: Collection, updates: { id: string; metadata: Metadata }[]): Promise<void> {
    const c = await this.collection(collection);
    for (let i = 0; i < updates.length; i += CHROMA_CHUNK) {
      const chunk = updates.slice(i, i + CHROMA_CHUNK);
      await c.update({
        ids: chunk.map((u) => u.id),
        metadatas: chunk.map((u) => u.metadata as ChromaMetadata),
      });
    }
  }

  async delete(collection: Collection, ids: string[]): Promise<void> {
    const c = await this.collection(collection);
    for (let i = 0; i < ids.length; i += CHROMA_CHUNK)
      await c.delete({ ids: ids.slice(i, i + CHROMA_CHUNK) });
  }

  async get(collection: Collection, args: Parameters<VectorStore['get']>[1]): ReturnType<VectorStore['get']> {
    const c = await this.collection(collection);
    const include = args.include ?? ['documents', 'metadatas'];
    const res = await c.get({
      ids: args.ids,
      where: args.where as never,
      include: include as never,
      limit: args.limit,
      offset: args.offset,
    });
    return {
      ids: res.ids,
      documents: res.documents,
      metadatas: res.metadatas as (Metadata | null)[],
      ...(include.includes('embeddings')
        ? { embeddings: (res.embeddings as number[][]).map((e) => Float32Array.from(e)) }
        : {}),
    };
  }

  async query(
    collection: Collection,
    embedding: Float32Array,
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[]> {
    return (await this.queryMany(collection, [embedding], nResults, where))[0] ?? [];
  }

  /** One Chroma query with many query embeddings: the hits of each, in order (as `query` gives them one by one). */
  async queryMany(
    collection: Collection,
    embeddings: Float32Array[],
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[][]> {
    const c = await this.collection(collection);
    const res = await c.query({
      queryEmbeddings: embeddings.map((e) => Array.from(e)),
      nResults,
      where: where as never,
      include: ['documents', 'metadatas', 'distances'] as never,
    });
    return embeddings.map((_, k) =>
      (res.ids[k] ?? []).map((id, i) => ({
        id,
        distance: res.distances?.[k]?.[i] ?? Number.NaN,
        document: res.documents?.[k]?.[i] ?? null,
        metadata: (res.metadatas?.[k]?.[i] ?? null) as Metadata | null,
      })),
    );
  }

  async count(collection: Collection): Promise<number> {
    return (await this.collection(collection)).count();
  }
}

/** Chroma rejects null metadata values on insert; absent keys mean the same thing there. */
function withoutNulls(m: Metadata): ChromaMetadata {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null)) as ChromaMetadata;
}

/** Squared-L2 distance of unit vectors → cosine similarity (reference §5.1). */
export function similarity(distance: number): number {
  return Math.max(0, 1 - distance / 2);
}
