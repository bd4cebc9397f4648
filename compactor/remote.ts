import { CHROMA_CHUNK, ChromaVectorStore, ensureDatabase } from '../core/chroma/store.js';
import { CollectionFence, FENCE_KEYS, type FenceLease } from '../core/chroma/remote-fence.js';
import { COLLECTIONS, type Collection } from '../core/contracts/ids.js';
import type { Logger } from '../core/log.js';
import type { Metadata, VectorRecord } from '../core/ports/vector-store.js';
import { newVersionId } from '../core/snapshot/volume.js';
import { WorkingCopy } from './working-copy.js';

/** The `remote` vector store of the compactor (core/config/vector-store.ts), and the Lease whose tokens fence it. */
export interface RemoteChroma {
  url: string;
  tenant: string;
  database: string;
  /** Name of the compactor's Lease (LEASE_NAME), recorded beside the token in each collection it claims. */
  leaseName: string;
}

/**
 * Remote mode (docs/adr/0013-remote-vector-store.md): the lanes merge straight into the collections of one Chroma
 * server, every write request fenced (core/chroma/remote-fence.ts). There is no working copy to publish: a batch is
 * committed by a full fence check that records its version id in the collection's metadata; nothing goes to the volume
 * or to S3 (the server's persistence and backups are the server's).
 */
export class RemoteStore {
  readonly store: ChromaVectorStore;
  readonly fence: CollectionFence;

  constructor(
    readonly config: RemoteChroma,
    lease: FenceLease,
    private readonly log: Logger,
    readonly timeoutMs: number,
  ) {
    this.store = new ChromaVectorStore(config.url, {
      timeoutMs,
      tenant: config.tenant,
      database: config.database,
    });
    this.fence = new CollectionFence(this.store, lease, config.leaseName);
  }

  /** Claims every collection (or one) for our token, creating the database and collections on a first start. */
  async claim(c?: Collection): Promise<number> {
    const { url, tenant, database } = this.config;
    await ensureDatabase(url, { tenant, database, timeoutMs: this.timeoutMs });
    let token = 0;
    for (const x of c ? [c] : COLLECTIONS) token = (await this.fence.check(x, { full: true })).token;
    this.log.info({ url, tenant, database, token }, 'remote collections claimed');
    return token;
  }

  /** The lane's merge target on the server. */
  target(c: Collection): RemoteCollection {
    return new RemoteCollection(c, this);
  }

  /** The version id of the last batch committed to `c`, if any. */
  async committedVersion(c: Collection): Promise<string | undefined> {
    const version = (await this.store.collectionMetadata(c))?.[FENCE_KEYS.version];
    return typeof version === 'string' ? version : undefined;
  }

  /** The commit point of a batch (in place of a publish): fenced, and its version id recorded. */
  async commit(c: Collection): Promise<string> {
    const version = newVersionId();
    const token = await this.fence.commit(c, version);
    this.log.info({ collection: c, version, token }, 'committed to the remote collection');
    return version;
  }
}

/**
 * A lane's collection on the remote server, with the working copy's operations (compactor/merge.ts uses it as one):
 * the connection is the remote server's (never started or stopped here), and every write request is preceded by the
 * fence check, one request of at most CHROMA_CHUNK records at a time.
 */
export class RemoteCollection extends WorkingCopy {
  constructor(
    collection: Collection,
    private readonly remote: RemoteStore,
  ) {
    super(collection, '', undefined, remote.timeoutMs);
  }

  protected override connect(): ReturnType<WorkingCopy['connect']> {
    return Promise.resolve({
      server: { url: this.remote.config.url, stop: () => Promise.resolve() },
      store: this.remote.store,
    });
  }

  /**
   * Connects, without the working copy's re-tuning of a foreign collection's HNSW persistence: that is for a server
   * we restart on every publish; a remote server's (or a distributed Chroma's index) settings are its operator's.
   */
  override async start(): Promise<void> {
    if (!this.server) await this.open();
  }

  /** Reconnects (no copy: the server's collection is the live one) and drops the cached receipt index. */
  override async reset(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** The lane's open (at start and after a failed batch): reconnect; the last committed version is the base. */
  async openLive(): Promise<string | undefined> {
    await this.reset();
    return this.remote.committedVersion(this.collection);
  }

  /** The lane's publish: the commit point of the batch (compactor/lane.ts). */
  commit(): Promise<string> {
    return this.remote.commit(this.collection);
  }

  override async add(records: VectorRecord[]): Promise<void> {
    for (const chunk of chunks(records)) {
      await this.fenced();
      await super.add(chunk);
    }
  }

  override async delete(ids: string[]): Promise<void> {
    for (const chunk of chunks(ids)) {
      await this.fenced();
      await super.delete(chunk);
    }
  }

  override async updateMetadata(updates: { id: string; metadata: Metadata }[]): Promise<void> {
    for (const chunk of chunks(updates)) {
      await this.fenced();
      await super.updateMetadata(chunk);
    }
  }

  private async fenced(): Promise<void> {
    await this.remote.fence.check(this.collection, { full: false });
  }
}

function* chunks<T>(items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += CHROMA_CHUNK) yield items.slice(i, i + CHROMA_CHUNK);
}
