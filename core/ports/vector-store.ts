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
  count(collection: Collection): Promise<number>;
}
