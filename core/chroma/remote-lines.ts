import type { VectorStoreConfig } from '../config/vector-store.js';
import type { Logger } from '../log.js';
import type { LinesIndex, LinesIndexSource } from '../ports/lines-index.js';
import { FENCE_KEYS } from './remote-fence.js';
import { ChromaVectorStore } from './store.js';

/**
 * The live `lines` collection of a remote Chroma server (VECTOR_STORE=remote), for merchant resolution: nothing to
 * copy or start, the worker queries the server the compactor writes. Its version is the last batch the compactor
 * committed (`embedctl_version` in the collection's metadata); no collection yet means no index, as on an empty volume.
 */
export class RemoteLinesIndexSource implements LinesIndexSource {
  constructor(
    private readonly o: Omit<Extract<VectorStoreConfig, { mode: 'remote' }>, 'mode'> & {
      timeoutMs?: number;
      log?: Logger;
    },
  ) {}

  async open(): Promise<LinesIndex | undefined> {
    const { url, tenant, database, timeoutMs } = this.o;
    const store = new ChromaVectorStore(url, { tenant, database, ...(timeoutMs ? { timeoutMs } : {}) });
    // Read only: a missing collection (or database) is an empty index, never created by a reader.
    const metadata = await store.collectionMetadata('lines');
    if (!metadata) return undefined;
    const v = metadata[FENCE_KEYS.version];
    const version = typeof v === 'string' ? v : 'uncommitted';
    this.o.log?.info({ url, tenant, database, version }, 'remote lines collection opened');
    return { version, origin: 'remote', store, close: () => Promise.resolve() };
  }
}
