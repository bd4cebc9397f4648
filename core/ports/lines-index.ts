import type { VectorStore } from './vector-store.js';

/** A read view of the live `lines` snapshot, opened once per batch and shared by its jobs. */
export interface LinesIndex {
  /** Snapshot version, and where it came from (`remote`: the live collection of a Chroma server, no snapshot). */
  readonly version: string;
  readonly origin: 'volume' | 's3' | 'remote';
  readonly store: VectorStore;
  close(): Promise<void>;
}

export interface LinesIndexSource {
  /** Undefined when there is no snapshot yet (an empty collection). */
  open(): Promise<LinesIndex | undefined>;
}
