import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newCompactionRun } from '../../../core/contracts/compaction-run.js';
import type { Collection } from '../../../core/contracts/ids.js';
import { SqliteLedger } from '../../../core/local/sqlite-ledger.js';
import type { OutgoingMessage, Queue } from '../../../core/ports/queue.js';
import { PendingRunSweeper } from '../../../stream/sweeper.js';

const IMAGE = '3f52804b-2fad-4e00-92c8-b593da3a8ed3';
const sha = 'a'.repeat(64);
const MIN = 60_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sweeper-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function fakeQueues(fail: { words: number }) {
  const sent: Record<Collection, OutgoingMessage[]> = { lines: [], words: [] };
  const q = (c: Collection): Queue =>
    ({
      name: c,
      send: async (m: OutgoingMessage[]) => {
        if (c === 'words' && fail.words-- > 0) throw new Error('throttled');
        sent[c].push(...m);
      },
    }) as unknown as Queue;
  return { sent, queues: { lines: q('lines'), words: q('words') } };
}

describe('PendingRunSweeper (SQLite ledger, fake queues)', () => {
  it('re-announces a run at most once per threshold; a failed send is retried by the next sweep; a run that left PENDING is not', async () => {
    const ledger = SqliteLedger.open(join(dir, 'ledger.sqlite'));
    let now = Date.now();
    await ledger.putRunIfAbsent(
      newCompactionRun({
        runId: 'r1',
        imageId: IMAGE,
        receiptId: 1,
        deltas: {
          lines: { key: 'lines/delta/r1/delta.arrow', sha256: sha, vectors: 4 },
          words: { key: 'words/delta/r1/delta.arrow', sha256: sha, vectors: 9 },
        },
        now: new Date(now),
      }),
    );
    const fail = { words: 1 };
    const { sent, queues } = fakeQueues(fail);
    const sweeper = new PendingRunSweeper({
      ledger,
      queues,
      log: pino({ level: 'silent' }),
      afterMs: 30 * MIN,
      now: () => now,
    });
    expect(await sweeper.sweepOnce()).toEqual({ runs: 0, messages: 0 }); // not old enough yet
    now += 31 * MIN;
    // words is throttled: lines goes out, words waits for the next sweep.
    expect(await sweeper.sweepOnce()).toEqual({ runs: 1, messages: 1 });
    expect(sent.lines).toHaveLength(1);
    expect(sent.words).toHaveLength(0);
    now += 10 * MIN;
    expect(await sweeper.sweepOnce()).toEqual({ runs: 1, messages: 1 }); // words now; lines not again yet
    expect(sent.lines).toHaveLength(1);
    expect(sent.words).toHaveLength(1);
    expect(JSON.parse(sent.words[0]!.body)).toMatchObject({
      entity_type: 'COMPACTION_RUN',
      event_name: 'INSERT',
      entity_data: { run_id: 'r1', delta_key: 'words/delta/r1/delta.arrow', vectors: 9 },
    });
    now += 25 * MIN; // lines was announced 35 min ago, words 25 min ago
    expect(await sweeper.sweepOnce()).toEqual({ runs: 1, messages: 1 });
    expect(sent.lines).toHaveLength(2);
    await ledger.setRunCollection({ imageId: IMAGE, receiptId: 1, runId: 'r1' }, 'words', {
      state: 'COMPLETED',
      mergedVectors: 9,
    });
    await ledger.setRunCollection({ imageId: IMAGE, receiptId: 1, runId: 'r1' }, 'lines', {
      state: 'COMPLETED',
      mergedVectors: 4,
    });
    now += 60 * MIN;
    expect(await sweeper.sweepOnce()).toEqual({ runs: 0, messages: 0 });
  });

  it('a ledger that does not answer fails the sweep at its deadline instead of hanging', async () => {
    const sweeper = new PendingRunSweeper({
      ledger: { pendingRuns: () => new Promise(() => {}) },
      queues: fakeQueues({ words: 0 }).queues,
      log: pino({ level: 'silent' }),
      timeoutMs: 50,
    });
    await expect(sweeper.sweepOnce()).rejects.toThrow(/no answer within 50 ms/);
  });
});
