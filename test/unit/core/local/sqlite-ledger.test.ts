import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newCompactionRun, runKey } from '../../../../core/contracts/compaction-run.js';
import { ConditionFailedError, SqliteLedger } from '../../../../core/local/sqlite-ledger.js';

const IMAGE = '3f52804b-2fad-4e00-92c8-b593da3a8ed3';
const sha = 'a'.repeat(64);
const run = (runId: string) =>
  newCompactionRun({
    runId,
    imageId: IMAGE,
    receiptId: 1,
    deltas: {
      lines: { key: `lines/delta/${runId}/delta.arrow`, sha256: sha, vectors: 4 },
      words: { key: `words/delta/${runId}/delta.arrow`, sha256: sha, vectors: 9 },
    },
  });

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-ledger-'));
  path = join(dir, 'ledger.sqlite');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SqliteLedger', () => {
  it('putRunIfAbsent is a conditional create: a second put with the same key changes nothing', async () => {
    const ledger = SqliteLedger.open(path);
    expect(await ledger.putRunIfAbsent(run('r1'))).toBe(true);
    const changed = { ...run('r1'), lines_vectors: 99 };
    expect(await ledger.putRunIfAbsent(changed)).toBe(false);
    expect((await ledger.getRun(IMAGE, 1, 'r1'))?.lines_vectors).toBe(4);
  });

  it('setRunCollection writes only its collection, never moves COMPLETED back, and fails COMPLETED on a missing run', async () => {
    const ledger = SqliteLedger.open(path);
    await ledger.putRunIfAbsent(run('r1'));
    const key = { imageId: IMAGE, receiptId: 1, runId: 'r1' };
    await ledger.setRunCollection(key, 'lines', { state: 'PROCESSING' });
    await ledger.setRunCollection(key, 'words', { state: 'FAILED', error: 'delta sha mismatch' });
    await ledger.setRunCollection(key, 'lines', { state: 'COMPLETED', mergedVectors: 4 });
    await ledger.setRunCollection(key, 'lines', { state: 'FAILED', error: 'late failure' }); // skipped
    const r = (await ledger.getRun(IMAGE, 1, 'r1'))!;
    expect(r).toMatchObject({
      lines_state: 'COMPLETED',
      lines_merged_vectors: 4,
      words_state: 'FAILED',
      words_error: 'delta sha mismatch',
    });
    expect(r.lines_error).toBeUndefined();
    expect(r.lines_started_at).toBeDefined();
    expect(r.lines_finished_at).toBeDefined();
    await ledger.setRunCollection({ ...key, runId: 'missing' }, 'lines', { state: 'FAILED' }); // skipped
    await expect(
      ledger.setRunCollection({ ...key, runId: 'missing' }, 'lines', { state: 'COMPLETED' }),
    ).rejects.toBeInstanceOf(ConditionFailedError);
  });

  it('pendingRuns lists runs with a collection still PENDING created before the cutoff, oldest first, up to the limit', async () => {
    const ledger = SqliteLedger.open(path);
    const HOUR = 3_600_000;
    const at = (runId: string, agoMs: number) =>
      newCompactionRun({
        runId,
        imageId: IMAGE,
        receiptId: 1,
        deltas: {
          lines: { key: `lines/delta/${runId}/delta.arrow`, sha256: sha, vectors: 4 },
          words: { key: `words/delta/${runId}/delta.arrow`, sha256: sha, vectors: 9 },
        },
        now: new Date(Date.now() - agoMs),
      });
    await ledger.putRunIfAbsent(at('older', 3 * HOUR));
    await ledger.putRunIfAbsent(at('old', 2 * HOUR));
    await ledger.putRunIfAbsent(at('fresh', 60_000));
    await ledger.putRunIfAbsent(at('done', 2 * HOUR));
    await ledger.putRunIfAbsent(at('half', HOUR));
    const key = (runId: string) => ({ imageId: IMAGE, receiptId: 1, runId });
    await ledger.setRunCollection(key('done'), 'lines', { state: 'COMPLETED', mergedVectors: 4 });
    await ledger.setRunCollection(key('done'), 'words', { state: 'FAILED', error: 'x' });
    await ledger.setRunCollection(key('half'), 'lines', { state: 'COMPLETED', mergedVectors: 4 });
    // Not a run, though it has a PENDING-looking field.
    await ledger.putItem({
      PK: `IMAGE#${IMAGE}`,
      SK: 'RECEIPT#00001#PLACE',
      lines_state: 'PENDING',
      created_at: '',
    });

    const cutoff = new Date(Date.now() - 30 * 60_000);
    expect((await ledger.pendingRuns(cutoff, 10)).map((r) => r.run_id)).toEqual(['older', 'old', 'half']);
    expect((await ledger.pendingRuns(cutoff, 2)).map((r) => r.run_id)).toEqual(['older', 'old']);
    expect(await ledger.pendingRuns(new Date(Date.now() - 4 * HOUR), 10)).toEqual([]);
    expect((await ledger.pendingRuns(cutoff, 10))[2]).toMatchObject({
      lines_state: 'COMPLETED',
      words_state: 'PENDING',
    });
  });

  it('queries a partition by SK prefix in SK order, treating LIKE wildcards literally', async () => {
    const ledger = SqliteLedger.open(path);
    for (const sk of [
      'RECEIPT#00002#LINE#00001',
      'RECEIPT#00001#PLACE',
      'RECEIPT#00001#LINE#00002',
      'RECEIPT#00001#LINE#00001',
      'RECEIPT%',
    ])
      await ledger.putItem({ PK: `IMAGE#${IMAGE}`, SK: sk, v: 1 });
    await ledger.putItem({ PK: 'IMAGE#other', SK: 'RECEIPT#00001#LINE#00001' });
    expect((await ledger.query(`IMAGE#${IMAGE}`, 'RECEIPT#00001#')).map((i) => i.SK)).toEqual([
      'RECEIPT#00001#LINE#00001',
      'RECEIPT#00001#LINE#00002',
      'RECEIPT#00001#PLACE',
    ]);
    expect((await ledger.query(`IMAGE#${IMAGE}`, 'RECEIPT%')).map((i) => i.SK)).toEqual(['RECEIPT%']);
  });

  it('records one change per effective write, in commit order, with old and new images; no-op writes record nothing', async () => {
    const ledger = SqliteLedger.open(path);
    const k = { PK: 'IMAGE#x', SK: 'RECEIPT#00001#PLACE' };
    await ledger.putItem({ ...k, merchant: 'A' });
    await ledger.putItem({ ...k, merchant: 'A' }); // unchanged: no record
    await ledger.putItem({ ...k, merchant: 'B' });
    await ledger.deleteItem(k);
    await ledger.deleteItem(k); // absent: no record
    await ledger.putRunIfAbsent(run('r1'));
    await ledger.setRunCollection({ imageId: IMAGE, receiptId: 1, runId: 'r1' }, 'lines', {
      state: 'COMPLETED',
    });
    const feed = ledger.changeFeed('stream');
    const { records } = await feed.next();
    expect(records.map((r) => [r.eventName, r.keys.SK, r.oldImage?.merchant, r.newImage?.merchant])).toEqual([
      ['INSERT', k.SK, undefined, 'A'],
      ['MODIFY', k.SK, 'A', 'B'],
      ['REMOVE', k.SK, 'B', undefined],
      ['INSERT', runKey(IMAGE, 1, 'r1').SK, undefined, undefined],
      ['MODIFY', runKey(IMAGE, 1, 'r1').SK, undefined, undefined],
    ]);
    expect(records[4]!.oldImage?.lines_state).toBe('PENDING');
    expect(records[4]!.newImage?.lines_state).toBe('COMPLETED');
    const ids = records.map((r) => r.id);
    expect([...ids].sort()).toEqual(ids);
    expect(records.every((r) => r.region === 'local')).toBe(true);
  });

  it('change feed: uncommitted records are replayed after a restart, committed ones never; consumers are independent', async () => {
    const ledger = SqliteLedger.open(path);
    for (let i = 0; i < 5; i++) await ledger.putItem({ PK: 'P', SK: `S${i}` });
    const feed = ledger.changeFeed('stream');
    const a = await feed.next({ limit: 2 });
    expect(a.records.map((r) => r.keys.SK)).toEqual(['S0', 'S1']);
    await a.commit();
    const b = await feed.next({ limit: 2 });
    expect(b.records.map((r) => r.keys.SK)).toEqual(['S2', 'S3']); // continues without commit
    // "crash": a new process opens the file and a new feed for the same consumer
    const restarted = SqliteLedger.open(path).changeFeed('stream');
    expect(restarted.checkpoint()).toBe(2);
    expect(restarted.pending()).toBe(3);
    const c = await restarted.next();
    expect(c.records.map((r) => r.keys.SK)).toEqual(['S2', 'S3', 'S4']);
    await c.commit();
    await b.commit(); // late, out-of-order commit does not move the checkpoint back
    expect(restarted.checkpoint()).toBe(5);
    expect((await restarted.next()).records).toEqual([]);
    const other = ledger.changeFeed('status');
    expect((await other.next()).records).toHaveLength(5);
  });

  it('an empty next waits for new changes up to waitMs', async () => {
    const ledger = SqliteLedger.open(path);
    const feed = ledger.changeFeed('stream', { waitMs: 5000, pollMs: 10 });
    setTimeout(() => void ledger.putItem({ PK: 'P', SK: 'late' }), 50);
    const t0 = Date.now();
    expect((await feed.next()).records.map((r) => r.keys.SK)).toEqual(['late']);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
