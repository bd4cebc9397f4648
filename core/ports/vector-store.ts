import type { Collection } from '../contracts/ids.js';

export type MetadataValue = string | number | boolean | null;
export type Metadata = Record<string, MetadataValue>;

export interface VectorRecord {
  id: string;
  document: string;
  metadata: Metadata;
  embedding: Float32Array;
}

export interface QueryHit {
  id: string;
  /** Squared L2 (core/contracts/vector-distance.ts: `similarity` turns it into a cosine). */
  distance: number;
  document: string | null;
  metadata: Metadata | null;
}

/** One Chroma database (a server on one persist directory). Vectors are always supplied; upserts are by id. */
export interface VectorStore {
  upsert(collection: Collection, records: VectorRecord[]): Promise<void>;
  /** Merges metadata (a null value removes the key). */
  updateMetadata(collection: Collection, updates: { id: string; metadata: Metadata }[]): Promise<void>;
  delete(collection: Collection, ids: string[]): Promise<void>;
  get(
    collection: Collection,
    args: {
      ids?: string[];
      where?: Record<string, unknown>;
      include?: ('embeddings' | 'documents' | 'metadatas')[];
      limit?: number;
      offset?: number;
    },
  ): Promise<{
    ids: string[];
    documents: (string | null)[];
    metadatas: (Metadata | null)[];
    embeddings?: Float32Array[];
  }>;
  query(
    collection: Collection,
    embedding: Float32Array,
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[]>;
  /**
   * Optional: many query embeddings in one request, the hits of each in order (exactly what `query` gives for each
   * alone). A store whose requests cost more than its searches offers it; callers fall back to `query` without it.
   */
  queryMany?(
    collection: Collection,
    embeddings: Float32Array[],
    nResults: number,
    where?: Record<string, unknown>,
  ): Promise<QueryHit[][]>;
  count(collection: Collection): Promise<number>;
}
