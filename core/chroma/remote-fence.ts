import type { Collection } from '../contracts/ids.js';
import { ConfigError } from '../errors.js';
import { LeaseLostError, type FencedLease } from '../lease/lease.js';
import type { Metadata } from '../ports/vector-store.js';
import type { ChromaVectorStore } from './store.js';

/**
 * Keys a remote-mode compactor keeps in the metadata of each collection it writes (docs/adr/0013-remote-vector-store.md):
 * the highest fencing token that claimed the collection, the Lease that token belongs to (tokens of two Leases do
 * not compare), who claimed it and when, and the version id of the last committed batch (what readers report).
 */
export const FENCE_KEYS = {
  token: 'embedctl_fence_token',
  lease: 'embedctl_fence_lease',
  holder: 'embedctl_fence_holder',
  claimedAt: 'embedctl_fence_claimed_at',
  version: 'embedctl_version',
} as const;

/** What the fence needs of the compactor's lease. */
export type FenceLease = Pick<FencedLease, 'assertHeld' | 'token' | 'lostSignal' | 'identity' | 'lock'>;

/**
 * The fence of a collection on a remote Chroma server, checked before every write request and at every commit: the
 * server has no conditional writes, so the token lives in the collection's own metadata. A writer whose token is
 * below the recorded one is refused (LeaseLostError: it stops without another write); one above it records its own
 * (a successor claiming the collection). `assertHeld` (a re-read of the Lease) is paid at the claim and at commits;
 * the per-write check uses the lease's local state (not lost, renewed within its duration on our own clock) and the
 * recorded token, one GET to the server.
 */
export class CollectionFence {
  constructor(
    private readonly store: ChromaVectorStore,
    private readonly lease: FenceLease,
    /** The Lease's name: a collection fenced under another Lease belongs to another deployment. */
    private readonly leaseName: string,
  ) {}

  /** Claims or re-checks `c` for our token; returns the token and the metadata as it now stands. */
  async check(c: Collection, opts: { full: boolean }): Promise<{ token: number; metadata: Metadata }> {
    const token = opts.full ? await this.lease.assertHeld() : this.localToken(c);
    let metadata = await this.store.collectionMetadata(c);
    if (metadata === undefined) {
      await this.store.collection(c); // first claim on an empty database: create it with the contract's settings
      metadata = (await this.store.collectionMetadata(c)) ?? {};
    }
    const lease = metadata[FENCE_KEYS.lease];
    if (typeof lease === 'string' && lease !== this.leaseName) {
      throw new ConfigError(
        `collection ${c} on ${this.store.url} is fenced by Lease ${lease}, this compactor holds ${this.leaseName}: ` +
          'two deployments share one Chroma database (set CHROMA_DATABASE)',
        { collection: c, lease, ours: this.leaseName },
      );
    }
    const recorded = Number(metadata[FENCE_KEYS.token] ?? 0) || 0;
    if (recorded > token) {
      throw new LeaseLostError(
        `collection ${c} on ${this.store.url} fenced by token ${recorded}, ours is ${token}`,
        {
          collection: c,
          token,
          fence: recorded,
        },
      );
    }
    if (recorded < token) {
      metadata = {
        ...metadata,
        [FENCE_KEYS.token]: token,
        [FENCE_KEYS.lease]: this.leaseName,
        [FENCE_KEYS.holder]: this.lease.identity,
        [FENCE_KEYS.claimedAt]: new Date().toISOString(),
      };
      await this.store.replaceCollectionMetadata(c, metadata);
    }
    return { token, metadata };
  }

  /** The commit point of a batch: a full check, then the batch's version id recorded beside the token. */
  async commit(c: Collection, version: string): Promise<number> {
    const { token, metadata } = await this.check(c, { full: true });
    await this.store.replaceCollectionMetadata(c, { ...metadata, [FENCE_KEYS.version]: version });
    return token;
  }

  /** Our token if the lease, as this process last saw it, is still ours and fresh; LeaseLostError otherwise. */
  private localToken(c: Collection): number {
    const token = this.lease.token;
    if (token === undefined || this.lease.lostSignal.aborted || this.lease.lock.expired()) {
      throw new LeaseLostError(`lease not held before a write to ${c}`, {
        collection: c,
        identity: this.lease.identity,
      });
    }
    return token;
  }
}
