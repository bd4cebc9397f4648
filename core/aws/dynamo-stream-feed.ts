import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ResourceNotFoundException,
  TrimmedDataAccessException,
  type Shard,
  type _Record as StreamRecord,
} from '@aws-sdk/client-dynamodb-streams';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeDurably } from '../durable-fs.js';
import type { Logger } from '../log.js';
import type { ChangeFeed, ChangeRecord, Item } from '../ports/ledger.js';
import { clientConfig, type AwsSettings } from './config.js';

/**
 * ChangeFeed over DynamoDB Streams. Reads every shard, a child only after its parent is finished (per-key order is
 * kept across resharding), re-creates expired iterators from the last position, and checkpoints per shard through a
 * CheckpointStore only when the caller commits, so a restart resumes without loss (at-least-once: records after the
 * last commit are read again).
 *
 * Closed shards are pruned from the checkpoint on commit, so it stays small as shards roll over (a ConfigMap holds
 * at most 1 MiB): a shard that is `done`, no longer returned by DescribeStream (trimmed, 24 h after it closed) and
 * whose children are known (a described shard or a checkpoint entry names it as parent) is removed. A live shard, a
 * shard not yet done, and a done shard still described or without known children stay.
 */
export interface ShardCheckpoint {
  /** Last handled sequence number; absent = nothing handled yet (start at TRIM_HORIZON). */
  seq?: string;
  /** The shard is closed and fully handled. */
  done?: boolean;
  /** Its parent shard, as DescribeStream named it: the parent's children are known once one of them is here. */
  parent?: string;
}

export interface Checkpoint {
  streamArn?: string;
  shards: Record<string, ShardCheckpoint>;
}

export interface CheckpointStore {
  load(): Promise<Checkpoint>;
  save(checkpoint: Checkpoint): Promise<void>;
}

/** Checkpoints in a JSON file, replaced atomically (write, fsync, rename). */
export class FileCheckpointStore implements CheckpointStore {
  constructor(readonly path: string) {}

  async load(): Promise<Checkpoint> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Checkpoint;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { shards: {} };
      throw err;
    }
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}`;
    await writeDurably(tmp, JSON.stringify(checkpoint));
    await rename(tmp, this.path);
  }
}

/** The subset of the Streams client the feed uses (a fake implements it in unit tests). */
export interface StreamsApi {
  send(command: DescribeStreamCommand | GetShardIteratorCommand | GetRecordsCommand): Promise<unknown>;
}

export interface DynamoStreamFeedOptions {
  streamArn: string;
  checkpoints: CheckpointStore;
  settings?: AwsSettings;
  client?: StreamsApi;
  log?: Logger;
  /** Re-describe the stream at least this often to discover new shards (default 10 s). */
  describeEveryMs?: number;
  /** Wait this long when a full pass found nothing (default 250 ms). */
  idleMs?: number;
}

interface ShardState {
  shard: Shard;
  iterator?: string;
  /** Sequence number of the last record returned by next() (not yet necessarily committed). */
  readSeq?: string;
  /** GetRecords returned no next iterator: the shard is closed and everything was returned. */
  exhausted?: boolean;
}

export class DynamoStreamFeed implements ChangeFeed {
  private readonly client: StreamsApi;
  private checkpoint: Checkpoint | undefined;
  private readonly shards = new Map<string, ShardState>();
  private lastDescribe = 0;
  private cursor = 0;
  /** Shard ids of the last DescribeStream, and the parents it named. */
  private described = new Set<string>();
  private describedParents = new Set<string>();
  /** Shard of the last batch handed out and not yet committed. */
  private uncommitted: string | undefined;

  constructor(private readonly opts: DynamoStreamFeedOptions) {
    this.client =
      opts.client ?? new DynamoDBStreamsClient(clientConfig(opts.settings ?? { region: 'us-east-1' }));
  }

  async next(options: { limit?: number; signal?: AbortSignal } = {}): Promise<{
    records: ChangeRecord[];
    commit(): Promise<void>;
  }> {
    if (!this.checkpoint) {
      const loaded = await this.opts.checkpoints.load();
      // A different stream (table re-created) starts over: its shard ids mean nothing here.
      this.checkpoint =
        loaded.streamArn && loaded.streamArn !== this.opts.streamArn ? { shards: {} } : loaded;
      this.checkpoint.streamArn = this.opts.streamArn;
    }
    if (this.uncommitted !== undefined) {
      // The previous batch was not committed (its handling failed): rewind that shard to its checkpoint.
      const st = this.shards.get(this.uncommitted);
      if (st) {
        st.iterator = undefined;
        st.readSeq = undefined;
        st.exhausted = false;
      }
      this.uncommitted = undefined;
    }
    if (Date.now() - this.lastDescribe > (this.opts.describeEveryMs ?? 10_000)) await this.describe();

    const ready = this.readyShards();
    for (let i = 0; i < ready.length; i++) {
      options.signal?.throwIfAborted();
      const state = ready[(this.cursor + i) % ready.length]!;
      const records = await this.read(state, options.limit ?? 1000);
      if (records === undefined) continue;
      this.cursor = (this.cursor + i + 1) % Math.max(1, ready.length);
      const shardId = state.shard.ShardId!;
      const parent = state.shard.ParentShardId;
      const seq = state.readSeq;
      const done = state.exhausted;
      if (done) await this.describe(); // children may have appeared
      this.uncommitted = shardId;
      return {
        records,
        commit: async () => {
          const cp = this.checkpoint!;
          cp.shards[shardId] = {
            ...(seq ? { seq } : {}),
            ...(done ? { done: true } : {}),
            ...(parent ? { parent } : {}),
          };
          this.prune(cp);
          await this.opts.checkpoints.save(cp);
          if (this.uncommitted === shardId) this.uncommitted = undefined;
        },
      };
    }
    await sleep(this.opts.idleMs ?? 250, undefined, { signal: options.signal });
    return { records: [], commit: async () => {} };
  }

  async close(): Promise<void> {
    this.shards.clear();
  }

  /** Removes done shards that were trimmed from the stream and whose children are known (see above). */
  private prune(cp: Checkpoint): void {
    if (this.described.size === 0) return; // no DescribeStream answer to judge by
    const parents = new Set(this.describedParents);
    for (const entry of Object.values(cp.shards)) if (entry.parent) parents.add(entry.parent);
    const pruned: string[] = [];
    for (const [id, entry] of Object.entries(cp.shards)) {
      if (entry.done && !this.described.has(id) && parents.has(id)) {
        delete cp.shards[id];
        this.shards.delete(id);
        pruned.push(id);
      }
    }
    if (pruned.length > 0)
      this.opts.log?.info({ shards: pruned }, 'pruned closed, trimmed shards from the checkpoint');
  }

  /** Shards that may be read now: not finished, and parent absent (trimmed) or finished. */
  private readyShards(): ShardState[] {
    const cp = this.checkpoint!;
    const isDone = (id: string) => cp.shards[id]?.done === true;
    return [...this.shards.values()].filter((s) => {
      const id = s.shard.ShardId!;
      if (isDone(id) || s.exhausted) return false;
      const parent = s.shard.ParentShardId;
      return !parent || !this.shards.has(parent) || isDone(parent);
    });
  }

  private async describe(): Promise<void> {
    const all: Shard[] = [];
    let start: string | undefined;
    do {
      const res = (await this.client.send(
        new DescribeStreamCommand({ StreamArn: this.opts.streamArn, ExclusiveStartShardId: start }),
      )) as { StreamDescription?: { Shards?: Shard[]; LastEvaluatedShardId?: string } };
      all.push(...(res.StreamDescription?.Shards ?? []));
      start = res.StreamDescription?.LastEvaluatedShardId;
    } while (start);
    for (const shard of all) {
      if (!this.shards.has(shard.ShardId!)) this.shards.set(shard.ShardId!, { shard });
      else this.shards.get(shard.ShardId!)!.shard = shard;
    }
    this.described = new Set(all.map((s) => s.ShardId!));
    this.describedParents = new Set(all.flatMap((s) => (s.ParentShardId ? [s.ParentShardId] : [])));
    this.lastDescribe = Date.now();
  }

  /** One GetRecords on a shard; undefined when it returned nothing (and is not newly exhausted). */
  private async read(state: ShardState, limit: number): Promise<ChangeRecord[] | undefined> {
    const shardId = state.shard.ShardId!;
    for (let attempt = 0; ; attempt++) {
      if (!state.iterator) state.iterator = await this.iterator(state);
      if (!state.iterator) return undefined;
      let res: { Records?: StreamRecord[]; NextShardIterator?: string };
      try {
        res = (await this.client.send(
          new GetRecordsCommand({ ShardIterator: state.iterator, Limit: Math.min(limit, 1000) }),
        )) as typeof res;
      } catch (err) {
        if (err instanceof ExpiredIteratorException && attempt < 3) {
          // Iterators live 15 minutes; resume from the last record we returned.
          this.opts.log?.info({ shardId }, 'shard iterator expired; re-creating');
          state.iterator = undefined;
          continue;
        }
        if (err instanceof TrimmedDataAccessException && attempt < 3) {
          this.opts.log?.error(
            { shardId, seq: state.readSeq },
            'stream records trimmed before they were read (older than 24 h); resuming at TRIM_HORIZON',
          );
          state.readSeq = undefined;
          state.iterator = await this.iterator(state, true);
          continue;
        }
        if (err instanceof ResourceNotFoundException) {
          // The shard is gone (trimmed after closing): nothing more to read from it.
          state.exhausted = true;
          state.iterator = undefined;
          return [];
        }
        throw err;
      }
      const records = (res.Records ?? []).map(toChange);
      const last = res.Records?.at(-1)?.dynamodb?.SequenceNumber;
      if (last) state.readSeq = last;
      state.iterator = res.NextShardIterator;
      if (!res.NextShardIterator) state.exhausted = true;
      if (records.length === 0 && !state.exhausted) return undefined;
      return records;
    }
  }

  private async iterator(state: ShardState, fromHorizon = false): Promise<string | undefined> {
    const shardId = state.shard.ShardId!;
    const seq = fromHorizon ? undefined : (state.readSeq ?? this.checkpoint!.shards[shardId]?.seq);
    try {
      const res = (await this.client.send(
        new GetShardIteratorCommand({
          StreamArn: this.opts.streamArn,
          ShardId: shardId,
          ...(seq
            ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: seq }
            : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      )) as { ShardIterator?: string };
      return res.ShardIterator;
    } catch (err) {
      if (err instanceof TrimmedDataAccessException && seq) {
        this.opts.log?.error(
          { shardId, seq },
          'checkpoint is older than the stream retention; resuming at TRIM_HORIZON',
        );
        return this.iterator(state, true);
      }
      if (err instanceof ResourceNotFoundException) {
        state.exhausted = true;
        return undefined;
      }
      throw err;
    }
  }
}

type Attr = {
  S?: string;
  N?: string;
  BOOL?: boolean;
  NULL?: boolean;
  M?: Record<string, Attr>;
  L?: Attr[];
  SS?: string[];
  NS?: string[];
  B?: Uint8Array;
  BS?: Uint8Array[];
};

/** Stream attribute values → plain values, as lib-dynamodb reads them (numbers as JS numbers, sets as arrays). */
export function fromAttr(a: Attr): unknown {
  if (a.S !== undefined) return a.S;
  if (a.N !== undefined) return Number(a.N);
  if (a.BOOL !== undefined) return a.BOOL;
  if (a.NULL) return null;
  if (a.M !== undefined) return unmarshall(a.M);
  if (a.L !== undefined) return a.L.map(fromAttr);
  if (a.SS !== undefined) return [...a.SS];
  if (a.NS !== undefined) return a.NS.map(Number);
  if (a.B !== undefined) return a.B;
  if (a.BS !== undefined) return [...a.BS];
  return undefined;
}

export function unmarshall(image: Record<string, Attr>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).map(([k, v]) => [k, fromAttr(v)]));
}

function toChange(r: StreamRecord): ChangeRecord {
  const d = r.dynamodb ?? {};
  const keys = unmarshall(d.Keys ?? {}) as { PK: string; SK: string };
  return {
    id: r.eventID ?? d.SequenceNumber ?? '',
    eventName: r.eventName as ChangeRecord['eventName'],
    keys,
    ...(d.OldImage ? { oldImage: unmarshall(d.OldImage as never) as Item } : {}),
    ...(d.NewImage ? { newImage: unmarshall(d.NewImage as never) as Item } : {}),
    ...(r.awsRegion ? { region: r.awsRegion } : {}),
  };
}
