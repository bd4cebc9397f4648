import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DynamoStreamFeed, FileCheckpointStore } from '../../../core/aws/dynamo-stream-feed.js';
import type { ChangeRecord } from '../../../core/ports/ledger.js';
import type { OutgoingMessage, Queue } from '../../../core/ports/queue.js';
import { StreamProcessor } from '../../../stream/processor.js';
import { FakeStreams } from '../../support/fake-streams.js';

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

describe('DynamoStreamFeed checkpoint pruning', () => {
  it('removes done shards trimmed from DescribeStream whose children are known; live, not-done and still-described shards stay', async () => {
    const fake = new FakeStreams();
    fake.shards = [
      { id: 'root', records: ['r1', 'r2'], closed: true },
      { id: 'mid', parent: 'root', records: ['m1'], closed: true },
      { id: 'leaf', parent: 'mid', records: ['l1'], closed: false },
      { id: 'open', records: ['o1', 'o2', 'o3'], closed: false },
      { id: 'closed-described', records: ['k1'], closed: true },
      { id: 'closed-childless', records: ['z1'], closed: true },
    ];
    const path = join(mkdtempSync(join(tmpdir(), 'feed-')), 'cp.json');
    const feed = feedFor(fake, path);
    await drain(feed, 12);
    const before = (await new FileCheckpointStore(path).load()).shards;
    expect(Object.keys(before).sort()).toEqual(
      ['closed-childless', 'closed-described', 'leaf', 'mid', 'open', 'root'].sort(),
    );
    expect(before.root).toEqual({ seq: 'r2', done: true });
    expect(before.mid).toEqual({ seq: 'm1', done: true, parent: 'root' });

    // 24 h later the closed shards root, mid and closed-childless are trimmed from the stream.
    fake.shards = fake.shards.filter((s) => !['root', 'mid', 'closed-childless'].includes(s.id));
    fake.shards.find((s) => s.id === 'leaf')!.records.push('l2');
    fake.shards.find((s) => s.id === 'open')!.records.push('o4');
    const seen = await drain(feed, 6);
    expect(seen.sort()).toEqual(['l2', 'o4']);
    const after = (await new FileCheckpointStore(path).load()).shards;
    // root (child mid known from its entry) and mid (child leaf described) are gone; closed-childless is done and
    // trimmed but no child names it, so it stays; the others are live or still described.
    expect(Object.keys(after).sort()).toEqual(
      ['closed-childless', 'closed-described', 'leaf', 'open'].sort(),
    );
    expect(after.leaf).toEqual({ seq: 'l2', parent: 'mid' });
    expect(after.open).toEqual({ seq: 'o4' });
    expect(after['closed-described']).toEqual({ seq: 'k1', done: true });

    // A restart from the pruned checkpoint reads nothing twice and is not blocked by the missing parents.
    fake.shards.find((s) => s.id === 'leaf')!.records.push('l3');
    expect(await drain(feedFor(fake, path), 6)).toEqual(['l3']);
  });
});

describe('StreamProcessor', () => {
  it('retries failed sends until accepted and commits only afterwards (docs/adr/0008)', async () => {
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
