import type { GetRecordsCommand } from '@aws-sdk/client-dynamodb-streams';
import {
  DescribeStreamCommand,
  ExpiredIteratorException,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  DynamoStreamFeed,
  FileCheckpointStore,
  type StreamsApi,
} from '../../../core/aws/dynamo-stream-feed.js';
import type { ChangeRecord } from '../../../core/ports/ledger.js';
import type { OutgoingMessage, Queue } from '../../../core/ports/queue.js';
import { StreamProcessor } from '../../../stream/processor.js';

/** A fake DynamoDB Streams API: shards with parents, closed or open, iterators that can be made to expire. */
class FakeStreams implements StreamsApi {
  shards: { id: string; parent?: string; records: string[]; closed: boolean }[] = [];
  expireNext = 0;
  calls: string[] = [];
  private iterators = new Map<string, { shard: string; pos: number }>();
  private n = 0;

  async send(command: DescribeStreamCommand | GetShardIteratorCommand | GetRecordsCommand): Promise<unknown> {
    if (command instanceof DescribeStreamCommand) {
      return {
        StreamDescription: {
          Shards: this.shards.map((s) => ({
            ShardId: s.id,
            ...(s.parent ? { ParentShardId: s.parent } : {}),
            SequenceNumberRange: { StartingSequenceNumber: '0' },
          })),
        },
      };
    }
    if (command instanceof GetShardIteratorCommand) {
      const shard = this.shards.find((s) => s.id === command.input.ShardId)!;
      let pos = 0;
      if (command.input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER') {
        pos = shard.records.indexOf(command.input.SequenceNumber!) + 1;
      }
      const it = `it-${this.n++}`;
      this.iterators.set(it, { shard: shard.id, pos });
      return { ShardIterator: it };
    }
    const it = this.iterators.get(command.input.ShardIterator!)!;
    if (this.expireNext > 0) {
      this.expireNext--;
      throw new ExpiredIteratorException({ message: 'expired', $metadata: {} });
    }
    const shard = this.shards.find((s) => s.id === it.shard)!;
    const limit = command.input.Limit ?? 1000;
    const recs = shard.records.slice(it.pos, it.pos + limit);
    this.calls.push(`${shard.id}:${recs.join(',')}`);
    const nextPos = it.pos + recs.length;
    const done = shard.closed && nextPos >= shard.records.length;
    const next = `it-${this.n++}`;
    if (!done) this.iterators.set(next, { shard: shard.id, pos: nextPos });
    return {
      Records: recs.map((seq) => ({
        eventID: `ev-${seq}`,
        eventName: 'INSERT',
        dynamodb: {
          SequenceNumber: seq,
          Keys: { PK: { S: 'IMAGE#x' }, SK: { S: `RECEIPT#00001#PLACE` } },
          NewImage: {
            PK: { S: 'IMAGE#x' },
            SK: { S: `RECEIPT#00001#PLACE` },
            merchant_name: { S: `m${seq}` },
          },
        },
      })),
      ...(done ? {} : { NextShardIterator: next }),
    };
  }
}

function feedFor(fake: FakeStreams, path: string) {
  return new DynamoStreamFeed({
    streamArn: 'arn:stream',
    checkpoints: new FileCheckpointStore(path),
    client: fake,
    idleMs: 1,
    describeEveryMs: 0,
  });
}

async function drain(feed: DynamoStreamFeed, passes = 20, commit = true): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < passes; i++) {
    const { records, commit: c } = await feed.next({ limit: 2 });
    seen.push(...records.map((r: ChangeRecord) => r.id.replace('ev-', '')));
    if (commit) await c();
  }
  return seen;
}

describe('DynamoStreamFeed', () => {
  it('reads every shard, a child only after its parent is finished and committed (resharding)', async () => {
    const fake = new FakeStreams();
    fake.shards = [
      { id: 'child-a', parent: 'root', records: ['c1', 'c2'], closed: false },
      { id: 'root', records: ['p1', 'p2', 'p3'], closed: true },
      { id: 'child-b', parent: 'root', records: ['d1'], closed: false },
      { id: 'orphan', parent: 'trimmed-away', records: ['o1'], closed: false },
    ];
    const seen = await drain(feedFor(fake, join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json')));
    expect([...seen].sort()).toEqual(['c1', 'c2', 'd1', 'o1', 'p1', 'p2', 'p3']);
    const idx = (s: string) => seen.indexOf(s);
    for (const child of ['c1', 'c2', 'd1']) expect(idx(child)).toBeGreaterThan(idx('p3'));
  });

  it('resumes after the last committed record on restart; uncommitted records are replayed, none skipped', async () => {
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3', '4', '5'], closed: false }];
    const path = join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json');
    const first = feedFor(fake, path);
    const a = await first.next({ limit: 2 });
    await a.commit(); // 1,2 committed
    const b = await first.next({ limit: 2 }); // 3,4 read but the process "crashes" before commit
    expect(b.records.map((r) => r.id)).toEqual(['ev-3', 'ev-4']);
    const second = feedFor(fake, path);
    expect(await drain(second, 5)).toEqual(['3', '4', '5']);
    fake.shards[0]!.records.push('6');
    expect(await drain(second, 2)).toEqual(['6']);
  });

  it('a batch handed out but not committed (handling failed) is handed out again by the next call', async () => {
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3'], closed: false }];
    const feed = feedFor(fake, join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json'));
    const a = await feed.next({ limit: 2 });
    expect(a.records.map((r) => r.id)).toEqual(['ev-1', 'ev-2']);
    const again = await feed.next({ limit: 2 });
    expect(again.records.map((r) => r.id)).toEqual(['ev-1', 'ev-2']);
    await again.commit();
    expect(await drain(feed, 3)).toEqual(['3']);
  });

  it('re-creates an expired iterator from its position without losing or repeating records', async () => {
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3', '4'], closed: false }];
    const feed = feedFor(fake, join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json'));
    const a = await feed.next({ limit: 2 });
    await a.commit();
    fake.expireNext = 1;
    expect(await drain(feed, 3)).toEqual(['3', '4']);
  });

  it('a different stream ARN (table re-created) starts from the horizon instead of using foreign shard ids', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json');
    await new FileCheckpointStore(path).save({ streamArn: 'arn:old', shards: { s: { seq: '2' } } });
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1', '2', '3'], closed: false }];
    expect(await drain(feedFor(fake, path), 3)).toEqual(['1', '2', '3']);
  });
});

describe('StreamProcessor', () => {
  it('retries failed sends until accepted and commits only afterwards (seed §8.3 dropped them)', async () => {
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1'], closed: false }];
    const path = join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json');
    const sent: OutgoingMessage[] = [];
    let failures = 3;
    const queue = (name: string): Queue =>
      ({
        name,
        send: async (m: OutgoingMessage[]) => {
          if (failures-- > 0) throw new Error('throttled');
          sent.push(...m);
        },
      }) as unknown as Queue;
    const processor = new StreamProcessor({
      feed: feedFor(fake, path),
      queues: { lines: queue('lines'), words: queue('words') },
      log: pino({ level: 'silent' }),
      maxBackoffMs: 5,
    });
    expect(await processor.runOnce()).toBe(1);
    expect(sent.map((m) => m.attributes?.collection)).toEqual(['lines', 'words']);
    expect(JSON.parse(sent[0]!.body)).toMatchObject({
      entity_type: 'RECEIPT_PLACE',
      stream_record_id: 'ev-1',
    });
    expect((await new FileCheckpointStore(path).load()).shards.s).toEqual({ seq: '1' });
  });

  it('an aborted send leaves the checkpoint where it was (the batch is replayed, not lost)', async () => {
    const fake = new FakeStreams();
    fake.shards = [{ id: 's', records: ['1'], closed: false }];
    const path = join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json');
    const ac = new AbortController();
    const failing = {
      name: 'q',
      send: async () => {
        ac.abort();
        throw new Error('down');
      },
    } as unknown as Queue;
    const processor = new StreamProcessor({
      feed: feedFor(fake, path),
      queues: { lines: failing, words: failing },
      log: pino({ level: 'silent' }),
      maxBackoffMs: 5,
    });
    await expect(processor.runOnce(ac.signal)).rejects.toThrow();
    expect((await new FileCheckpointStore(path).load()).shards).toEqual({});
  });
});

describe('stream image unmarshalling', () => {
  it('reads every attribute type as lib-dynamodb does (numbers as numbers, sets as arrays)', async () => {
    const { unmarshall } = await import('../../../core/aws/dynamo-stream-feed.js');
    expect(
      unmarshall({
        s: { S: 'x' },
        n: { N: '1.5' },
        b: { BOOL: true },
        z: { NULL: true },
        m: { M: { inner: { N: '2' } } },
        l: { L: [{ S: 'a' }, { N: '3' }] },
        ss: { SS: ['p', 'q'] },
        ns: { NS: ['4', '5'] },
      }),
    ).toEqual({ s: 'x', n: 1.5, b: true, z: null, m: { inner: 2 }, l: ['a', 3], ss: ['p', 'q'], ns: [4, 5] });
  });
});
