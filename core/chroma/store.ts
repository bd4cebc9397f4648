import {
  AdminClient,
  ChromaClient,
  ChromaNotFoundError,
  ChromaUniqueError,
  type Collection as ChromaCollection,
  type Metadata as ChromaMetadata,
} from 'chromadb';
import type { Collection } from '../contracts/ids.js';
import { DISTANCE_SPACE } from '../contracts/vector-distance.js';
import { TransientError } from '../errors.js';
import type { Metadata, QueryHit, VectorRecord, VectorStore } from '../ports/vector-store.js';

/** Largest batch per call: below Chroma's 5,461-record limit and its 40 MiB payload limit at 1536 dims. */
export const CHROMA_CHUNK = 1000;

/**
 * Chroma persists its HNSW index only after this many new records (default 1,000) and replays the rest from its log,
 * at ≈ 4 ms per vector, on every reopen (chroma-core/chroma#6975, #7463). The compactor reopens its working copy on
 * every publish, so it persists after every merge of a receipt or more: a reopen then only loads the index.
 */
export const HNSW_SYNC_THRESHOLD = 32;

/** Default bound on one Chroma HTTP request (headers and body), ChromaVectorStore's `timeoutMs`. */
export const DEFAULT_CHROMA_TIMEOUT_MS = 60_000;

/** A Chroma request got no complete answer within the store's timeout: the server hangs (or is far too slow). */
export class ChromaTimeoutError extends TransientError {
  constructor(
    readonly operation: string,
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`Chroma ${operation} at ${url} did not answer within ${timeoutMs} ms`, {
      operation,
      url,
      timeoutMs,
    });
  }
}

export interface ChromaStoreOptions {
  /** Bound on each HTTP request to the server, from sending it to the end of its answer (default 60 s). */
  timeoutMs?: number;
  /** Tenant and database of the collections (a remote server may hold several deployments); Chroma's defaults. */
  tenant?: string;
  database?: string;
}

/** The chromadb client's internal HTTP client (no public hook for a per-request signal). */
interface ChromaApiClient {
  getConfig(): { fetch?: (request: Request) => Promise<Response> };
  setConfig(config: { fetch: (request: Request) => Promise<Response> }): void;
}

/** Set on the error a request's fetch gets when its own deadline passed, to tell it from other aborts. */
const TIMED_OUT = Symbol('chroma request timed out');

/**
 * VectorStore over one Chroma server. Collections are created without an embedding function and with the contract's
 * distance (squared L2, core/contracts/vector-distance.ts). Every HTTP request carries its own deadline
 * (`timeoutMs`): a server that accepts and never answers fails the operation with ChromaTimeoutError (Transient)
 * naming it and the server, instead of hanging the compactor or a reader forever. It offers `queryMany`.
 */
export class ChromaVectorStore implements VectorStore {
  private readonly client: ChromaClient;
  private readonly collections = new Map<Collection, Promise<ChromaCollection>>();
  readonly timeoutMs: number;

  constructor(
    readonly url: string,
    opts: ChromaStoreOptions = {},
  ) {
    const u = new URL(url);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CHROMA_TIMEOUT_MS;
    const ssl = u.protocol === 'https:';
    this.client = new ChromaClient({
      host: u.hostname,
      port: Number(u.port || (ssl ? 443 : 80)),
      ssl,
      ...(opts.tenant ? { tenant: opts.tenant } : {}),
      ...(opts.database ? { database: opts.database } : {}),
    });
    this.withDeadlines();
  }

  /**
   * Wraps the client's fetch so that every request gets a fresh AbortSignal.timeout: the signal of `fetchOptions` is
   * fixed when the client is built and would expire once for all requests. The chromadb client keeps its HTTP client
   * private; a version without it fails here, at construction, rather than silently without deadlines.
   */
  private withDeadlines(): void {
    const api = (this.client as unknown as { apiClient?: ChromaApiClient }).apiClient;
    const inner = api?.getConfig().fetch;
    if (!api || !inner) throw new Error('chromadb client has no apiClient.fetch to put request deadlines on');
    const ms = this.timeoutMs;
    api.setConfig({
      fetch: async (request: Request) => {
        const signal = AbortSignal.timeout(ms);
        try {
          return await inner(new Request(request, { signal }));
        } catch (err) {
          if (signal.aborted)
            throw Object.assign(new Error(`request timed out after ${ms} ms`), { [TIMED_OUT]: true });
          throw err;
        }
      },
    });
  }

  /** Runs one store operation; a request deadline that passed (while waiting or reading the answer) is named. */
  private async op<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as { [TIMED_OUT]?: boolean; name?: string; cause?: { [TIMED_OUT]?: boolean } };
      // Headers late: our fetch wrapper's error (possibly wrapped); body late: the aborted body's TimeoutError.
      if (e?.[TIMED_OUT] || e?.cause?.[TIMED_OUT] || e?.name === 'TimeoutError')
        throw new ChromaTimeoutError(operation, this.url, this.timeoutMs);
      throw err;
    }
  }

  collection(name: Collection): Promise<ChromaCollection> {
    let c = this.collections.get(name);
    if (!c) {
      c = this.op(`getOrCreateCollection ${name}`, () =>
        this.client.getOrCreateCollection({
          name,
          embeddingFunction: null,
          configuration: { hnsw: { space: DISTANCE_SPACE, sync_threshold: HNSW_SYNC_THRESHOLD } },
          metadata: { description: `Collection: ${name}` },
        }),
      );
      c.catch(() => this.collections.delete(name));
      this.collections.set(name, c);
    }
    return c;
  }

  /** The collection's metadata, read afresh from the server (no cache); undefined when it does not exist. */
  async collectionMetadata(name: Collection): Promise<Metadata | undefined> {
    try {
      const c = await this.op(`getCollection ${name}`, () =>
        this.client.getCollection({ name, embeddingFunction: null } as never),
      );
      return (c.metadata ?? {}) as Metadata;
    } catch (err) {
      if (err instanceof ChromaNotFoundError) return undefined;
      throw err;
    }
  }

  /** Replaces the collection's metadata: Chroma's modify replaces the whole map, it never merges keys. */
  async replaceCollectionMetadata(name: Collection, metadata: Metadata): Promise<void> {
    const c = await this.collection(name);
    await this.op(`modify ${name}`, () => c.modify({ metadata: withoutNulls(metadata) }));
  }

  async upsert(collection: Collection, records: VectorRecord[]): Promise<void> {
    const c = await this.collection(collection);
    await inChunks(records, (chunk) =>
      this.op(`upsert ${collection}`, () =>
        c.upsert({
          ids: chunk.map((r) => r.id),
          embeddings: chunk.map((r) => Array.from(r.embedding)),
          documents: chunk.map((r) => r.document),
          metadatas: chunk.map((r) => withoutNulls(r.metadata)),
        }),
      ),
    );
  }

  async updateMetadata(collection: Collection, updates: { id: string; metadata: Metadata }[]): Promise<void> {
    const c = await this.collection(collection);
    await inChunks(updates, (chunk) =>
      this.op(`update ${collection}`, () =>
        c.update({
          ids: chunk.map((u) => u.id),
          metadatas: chunk.map((u) => u.metadata as ChromaMetadata),
        }),
      ),
    );
  }

  async delete(collection: Collection, ids: string[]): Promise<void> {
    const c = await this.collection(collection);
    await inChunks(ids, (chunk) => this.op(`delete ${collection}`, () => c.delete({ ids: chunk })));
  }

  async get(collection: Collection, args: Parameters<VectorStore['get']>[1]): ReturnType<VectorStore['get']> {
    const c = await this.collection(collection);
    const include = args.include ?? ['documents', 'metadatas'];
    const res = await this.op(`get ${collection}`, () =>
      c.get({
        ids: args.ids,
        where: args.where as never,
        include: include as never,
        limit: args.limit,
        offset: args.offset,
      }),
    );
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
    const res = await this.op(`query ${collection}`, () =>
      c.query({
        queryEmbeddings: embeddings.map((e) => Array.from(e)),
        nResults,
        where: where as never,
        include: ['documents', 'metadatas', 'distances'] as never,
      }),
    );
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
    const c = await this.collection(collection);
    return this.op(`count ${collection}`, () => c.count());
  }
}

/** Creates the database (in an existing tenant) unless it exists: a writer's first start on a remote server. */
export async function ensureDatabase(
  url: string,
  opts: { tenant: string; database: string; timeoutMs?: number },
): Promise<void> {
  const u = new URL(url);
  const ssl = u.protocol === 'https:';
  const admin = new AdminClient({
    host: u.hostname,
    port: Number(u.port || (ssl ? 443 : 80)),
    ssl,
    fetchOptions: { signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_CHROMA_TIMEOUT_MS) },
  });
  try {
    await admin.getDatabase({ name: opts.database, tenant: opts.tenant });
  } catch (err) {
    if (!(err instanceof ChromaNotFoundError)) throw err;
    await admin.createDatabase({ name: opts.database, tenant: opts.tenant }).catch((e: unknown) => {
      if (!(e instanceof ChromaUniqueError)) throw e; // created meanwhile by someone else: fine
    });
  }
}

/** Chroma rejects null metadata values on insert; absent keys mean the same thing there. */
function withoutNulls(m: Metadata): ChromaMetadata {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null)) as ChromaMetadata;
}

/** Sends `items` CHROMA_CHUNK at a time, one request after the other. */
async function inChunks<T>(items: T[], send: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += CHROMA_CHUNK) await send(items.slice(i, i + CHROMA_CHUNK));
}
