// Bad deltas fail only their own run, with the reason (never COMPLETED with zero vectors: failure 3, 4), while the
// good runs of the same batch still merge. Unparseable messages reach the DLQ with a reason (not dropped).
import { randomUUID } from 'node:crypto';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import {
  compactorFor,
  pumpStream,
  dlqMessages,
  dumpLive,
  makeReceipt,
  makeWorld,
  queueDepth,
  writeRun,
} from './fixtures.js';

const env = inject('testEnv');

describe('bad deltas and poison messages', () => {
  it('checksum mismatch, truncation, wrong dimension and a missing object each FAIL their run; the rest merge', async () => {
    const w = await makeWorld(env, 'bad');
    const good = makeReceipt(10);
    const flipped = makeReceipt(11);
    const truncated = makeReceipt(12);
    const wrongDim = makeReceipt(13, { dim: 8 });
    const missing = makeReceipt(14);
    const runs = {
      good: await writeRun(w, good),
      // Same bytes length, one byte flipped after the hash was recorded.
      flipped: await writeRun(w, flipped, {
        tamper: {
          words: (b) => Buffer.concat([b.subarray(0, 100), Buffer.from([b[100]! ^ 0xff]), b.subarray(101)]),
        },
      }),
      truncated: await writeRun(w, truncated, {
        tamper: { lines: (b) => b.subarray(0, Math.floor(b.length / 2)) },
      }),
      wrongDim: await writeRun(w, wrongDim, { dim: 8 }),
      missing: await writeRun(w, missing, { skipUpload: ['lines', 'words'] }),
    };
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);

    const state = async (name: keyof typeof runs, c: 'lines' | 'words') => {
      const r = runs[name];
      return runCollection((await w.ledger.getRun(r.image_id, r.receipt_id, r.run_id))!, c);
    };
    expect(await state('good', 'lines')).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
    expect(await state('good', 'words')).toMatchObject({ state: 'COMPLETED', mergedVectors: 6 });
    expect(await state('flipped', 'words')).toMatchObject({
      state: 'FAILED',
      error: expect.stringMatching(/DeltaCorrupt: sha256 mismatch/),
    });
    expect(await state('flipped', 'lines')).toMatchObject({ state: 'COMPLETED' }); // its other delta was fine
    expect(await state('truncated', 'lines')).toMatchObject({
      state: 'FAILED',
      error: expect.stringMatching(/DeltaCorrupt/),
    });
    for (const c of ['lines', 'words'] as const) {
      expect(await state('wrongDim', c)).toMatchObject({
        state: 'FAILED',
        error: expect.stringMatching(/wrong dimension 8/),
      });
      expect(await state('missing', c)).toMatchObject({
        state: 'FAILED',
        error: expect.stringMatching(/SourceMissing/),
      });
      expect((await state('missing', c))!.mergedVectors).toBeUndefined();
    }
    const lines = await dumpLive(w.root, 'lines', w.dir);
    const words = await dumpLive(w.root, 'words', w.dir);
    const ids = (r: { lines: { id: string }[] }) => r.lines.map((x) => x.id);
    for (const id of [...ids(good), ...ids(flipped)]) expect(lines.records.has(id)).toBe(true);
    for (const id of [...ids(truncated), ...ids(wrongDim), ...ids(missing)])
      expect(lines.records.has(id)).toBe(false);
    expect(words.records.size).toBe(good.words.length + truncated.words.length);
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
    expect(await queueDepth(w, w.urls.words)).toBe(0);
  });

  it('unparseable and schema-invalid messages go to the DLQ with the reason; valid ones in the batch still merge', async () => {
    const w = await makeWorld(env, 'poison');
    const r = makeReceipt(20);
    await writeRun(w, r);
    await w.queues.lines.send([
      { body: 'not json {', attributes: { collection: 'lines' } },
      {
        body: JSON.stringify({ source: 'dynamodb_stream', entity_type: 'NOPE' }),
        attributes: { collection: 'lines' },
      },
    ]);
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    const dead = await dlqMessages(w);
    expect(dead).toHaveLength(2);
    expect(dead.map((d) => d.reason).every((x) => x.startsWith('InvalidMessage:'))).toBe(true);
    expect(dead.map((d) => d.body)).toContain('not json {');
    expect((await dumpLive(w.root, 'lines', w.dir)).records.size).toBe(3);
  });

  it('a run message whose CompactionRun row does not exist is acknowledged without merging or publishing', async () => {
    const w = await makeWorld(env, 'ghost');
    const ghost = {
      source: 'dynamodb_stream',
      entity_type: 'COMPACTION_RUN',
      entity_data: { run_id: randomUUID(), image_id: randomUUID(), receipt_id: 1 },
      changes: {},
      event_name: 'INSERT',
      timestamp: new Date().toISOString(),
      stream_record_id: 'x',
    };
    await w.queues.lines.send([{ body: JSON.stringify(ghost), attributes: { collection: 'lines' } }]);
    await compactorFor(w, 'c1').run(new AbortController().signal);
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
    expect((await dumpLive(w.root, 'lines', w.dir)).version).toBeUndefined();
  });

  it('receives that were throttled or never processed do not count: a message received many times still merges (failure 5)', async () => {
    const w = await makeWorld(env, 'throttle');
    const r = makeReceipt(30);
    await writeRun(w, r);
    await pumpStream(w);
    // Drive ApproximateReceiveCount up without processing (what Lambda poll throttling did).
    for (let i = 0; i < 5; i++) {
      const got = await w.queues.lines.receive({ maxMessages: 10, waitSeconds: 1, visibilitySeconds: 0 });
      expect(got.length).toBe(1);
    }
    const c = compactorFor(w, 'c1', { maxReceives: 3 });
    // And the first receives of the compactor itself are throttled.
    let throttled = 2;
    const real = w.queues.lines.receive.bind(w.queues.lines);
    w.queues.lines.receive = async (o) => {
      if (throttled-- > 0) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return real(o);
    };
    await c.run(new AbortController().signal);
    expect((await dlqMessages(w)).length).toBe(0);
    expect((await dumpLive(w.root, 'lines', w.dir)).records.size).toBe(3);
    const item = (await w.ledger.getRun(
      r.imageId,
      r.receiptId,
      (await w.ledger.query(`IMAGE#${r.imageId}`, 'RECEIPT#00001#COMPACTION_RUN#'))[0]!.run_id as string,
    ))!;
    expect(runCollection(item, 'lines')?.state).toBe('COMPLETED');
  });

  it('a message whose processing keeps failing goes to the DLQ after maxReceives failed attempts, with the reason', async () => {
    const w = await makeWorld(env, 'repeat');
    const r = makeReceipt(31);
    const run = await writeRun(w, r);
    await pumpStream(w);
    const c = compactorFor(w, 'c1', { maxReceives: 3, exitWhenIdleMs: 9000 });
    const realGet = w.ledger.getRun.bind(w.ledger);
    w.ledger.getRun = async (i, rid, id) => {
      if (id === run.run_id) throw new Error('ledger unavailable (simulated)');
      return realGet(i, rid, id);
    };
    await c.run(new AbortController().signal);
    const dead = await dlqMessages(w);
    // One message per collection. Counted by body: the DLQ is an SQS queue, at least once (one CI run of 1,026
    // tests saw a third, identical dead letter; a resent SendMessage after a moto timeout would do that).
    expect(new Set(dead.map((d) => d.body)).size).toBe(2);
    for (const d of dead) expect(d.reason).toMatch(/failed 3 times; last: ledger unavailable/);
  });
});
