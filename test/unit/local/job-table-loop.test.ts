import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { embeddingJobName } from '../../../core/contracts/embedding-job.js';
import { LocalJobTable } from '../../../core/local/job-table.js';
import type { LaunchResult, ProcessLauncher } from '../../../core/local/launcher.js';
import { SqliteQueue } from '../../../core/local/sqlite-queue.js';
import {
  dispatchAll,
  firstWaveSize,
  ingestAll,
  LocalJobStatusSink,
  recoverClaims,
  settleBatch,
  type DispatchOptions,
} from '../../../local/loop.js';

const log = pino({ level: 'silent' });
const msg = (receipt: number) => ({
  image_id: '3f52804b-2fad-4e00-92c8-b593da3a8ed3',
  receipt_id: receipt,
  artifacts_bucket: 'receipts',
  lines_key: `r${receipt}/lines.ndjson`,
  words_key: `r${receipt}/words.ndjson`,
});
const opts: DispatchOptions = {
  batchSize: 10,
  concurrency: 2,
  maxAttempts: 2,
  retryBaseMs: 1000,
  deadlineMs: 60_000,
  workerCommand: () => ({ command: 'true', args: [] }),
};
const result = (name: string, r: Partial<LaunchResult>): LaunchResult => ({
  name,
  pid: 1,
  exitCode: 0,
  signal: null,
  reason: 'Completed',
  durationMs: 1,
  stdout: '',
  stderr: '',
  ...r,
});

let dir: string;
let jobs: LocalJobTable;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'job-table-'));
  jobs = LocalJobTable.open(join(dir, 'jobs.sqlite'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('local ingest', () => {
  it('creates one job per payload (redelivery creates nothing) and dead-letters invalid messages with the reason', async () => {
    const q = SqliteQueue.open(join(dir, 'q.sqlite'), 'EMBED');
    await q.send([
      { body: JSON.stringify(msg(1)) },
      { body: JSON.stringify(msg(1)) },
      { body: JSON.stringify(msg(2)) },
      { body: '{not json' },
      { body: JSON.stringify({ ...msg(3), image_id: 'nope' }) },
    ]);
    const stats = await ingestAll(q, jobs, log);
    expect(stats).toEqual({ received: 5, created: 2, duplicates: 1, deadLettered: 2 });
    expect(jobs.list().map((j) => j.name)).toEqual(
      [embeddingJobName(msg(1)), embeddingJobName(msg(2))].sort(),
    );
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0 });
    expect(q.deadLetters().map((d) => d.reason)).toEqual([
      expect.stringMatching(/^InvalidMessage: body is not JSON/),
      'InvalidMessage: image_id: must be a UUID',
    ]);
  });
});

describe('local job table + settle rules (controller/README.md)', () => {
  const setup = (n: number) => {
    for (let i = 1; i <= n; i++) jobs.createFromMessage(msg(i));
    const claimed = jobs.claim('ejw-1', n);
    jobs.markRunning(claimed.map((j) => j.name));
    return claimed.map((j) => j.name);
  };

  it('claims oldest first, counts attempts, and never claims a job twice', () => {
    const names = setup(3);
    expect(names).toHaveLength(3);
    expect(jobs.claim('ejw-2', 5)).toEqual([]);
    expect(
      jobs.list().every((j) => j.phase === 'Running' && j.attempts === 1 && j.workerJob === 'ejw-1'),
    ).toBe(true);
  });

  it('turns reports into phases; unreported items are retried with backoff, then failed after maxAttempts', () => {
    const [a, b, c] = setup(3) as [string, string, string];
    jobs.report(a, { workerJob: 'ejw-1', outcome: 'Succeeded' }, { runId: 'r', lines: 3, rows: 2, words: 9 });
    jobs.report(b, {
      workerJob: 'ejw-1',
      outcome: 'Failed',
      reason: 'BadInput',
      message: 'lines.ndjson, row 7, field text: Required',
    });
    settleBatch(
      jobs,
      [a, b, c],
      result('ejw-1', { exitCode: 1, reason: 'Failed', stderr: 'boom\n' }),
      opts,
      log,
    );
    expect(jobs.get(a)).toMatchObject({ phase: 'Succeeded', result: { rows: 2, words: 9 } });
    expect(jobs.get(b)).toMatchObject({
      phase: 'Failed',
      reason: 'BadInput',
      message: 'lines.ndjson, row 7, field text: Required',
    });
    const retried = jobs.get(c)!;
    expect(retried).toMatchObject({
      phase: 'Pending',
      reason: 'WorkerError',
      message: 'worker ejw-1 exit 1: boom',
    });
    expect(retried.nextAttemptAt).toBeGreaterThan(Date.now());
    expect(jobs.claim('ejw-2', 5)).toEqual([]); // backoff not elapsed
    const [again] = jobs.claim('ejw-2', 5, Date.now() + 60_000);
    expect(again).toMatchObject({ name: c, attempts: 2 });
    settleBatch(
      jobs,
      [c],
      result('ejw-2', { exitCode: null, signal: 'SIGKILL', reason: 'DeadlineExceeded' }),
      opts,
      log,
    );
    expect(jobs.get(c)).toMatchObject({ phase: 'Failed', reason: 'DeadlineExceeded' });
    expect(jobs.get(c)!.message).toMatch(/after 2 attempts/);
  });

  it('exit 2 / 3 fail unreported items without retry; a report of an older worker is not taken for this one', () => {
    const [a, b] = setup(2) as [string, string];
    jobs.report(a, { workerJob: 'ejw-old', outcome: 'Succeeded' });
    settleBatch(
      jobs,
      [a, b],
      result('ejw-1', { exitCode: 3, reason: 'Failed', stderr: 's3://x missing' }),
      opts,
      log,
    );
    expect(jobs.get(a)).toMatchObject({ phase: 'Failed', reason: 'SourceMissing' });
    expect(jobs.get(b)!.message).toContain('s3://x missing');
  });

  it('recoverClaims honours written reports and returns the rest to Pending', () => {
    const [a, b] = setup(2) as [string, string];
    jobs.report(a, { workerJob: 'ejw-1', outcome: 'Succeeded' });
    expect(recoverClaims(jobs, log)).toBe(2);
    expect(jobs.get(a)!.phase).toBe('Succeeded');
    expect(jobs.get(b)).toMatchObject({ phase: 'Pending', reason: 'RunnerRestarted' });
  });

  it('the stream sink records compaction; Completed never moves back; unknown jobs are ignored', async () => {
    const [a] = setup(1) as [string];
    const sink = new LocalJobStatusSink(jobs);
    const base = { jobName: a, runId: 'r', imageId: msg(1).image_id, receiptId: 1 };
    await sink.report({ ...base, collection: 'lines', state: 'Completed' });
    await sink.report({ ...base, collection: 'lines', state: 'Failed', error: 'late' });
    await sink.report({ ...base, collection: 'words', state: 'Failed', error: 'sha mismatch' });
    await sink.report({ ...base, jobName: 'gone', collection: 'words', state: 'Completed' });
    expect(jobs.get(a)).toMatchObject({
      compaction: { lines: 'Completed', words: 'Failed' },
      compactionError: 'sha mismatch',
    });
  });
});

describe('local dispatch while jobs are still being ingested', () => {
  /** Runs each "worker" in-process: every job of the batch reports success after a short while. */
  const fakeLauncher = (batches: string[][]) =>
    ({
      launch: async (spec: { name: string; args: string[] }) => {
        batches.push(spec.args);
        await new Promise((r) => setTimeout(r, 20));
        for (const name of spec.args)
          jobs.report(name, {
            workerJob: spec.name,
            outcome: 'Succeeded',
            reportedAt: new Date().toISOString(),
          });
        return result(spec.name, {});
      },
    }) as unknown as ProcessLauncher;
  const feedOpts = (feeding: Promise<unknown>): DispatchOptions => ({
    ...opts,
    workerCommand: (_job, names) => ({ command: 'true', args: names }),
    feeding,
  });

  it('starts the first (small) wave at once, takes jobs created later, and returns only after the feed ends', async () => {
    for (let i = 1; i <= 4; i++) jobs.createFromMessage(msg(i));
    let fedAt = 0;
    const feeding = (async () => {
      await new Promise((r) => setTimeout(r, 150));
      for (let i = 5; i <= 34; i++) jobs.createFromMessage(msg(i));
      fedAt = Date.now();
    })();
    const batches: string[][] = [];
    await dispatchAll(jobs, fakeLauncher(batches), feedOpts(feeding), log);
    expect(fedAt).toBeGreaterThan(0);
    expect(batches.slice(0, 2).map((b) => b.length)).toEqual([firstWaveSize(10), firstWaveSize(10)]);
    expect(batches.flat().sort()).toEqual(
      jobs
        .list()
        .map((j) => j.name)
        .sort(),
    );
    expect(jobs.counts().Succeeded).toBe(34);
  });

  it('fails when the feed fails', async () => {
    jobs.createFromMessage(msg(1));
    const feeding = new Promise((_, reject) => setTimeout(() => reject(new Error('upload failed')), 50));
    await expect(dispatchAll(jobs, fakeLauncher([]), feedOpts(feeding), log)).rejects.toThrow(
      'upload failed',
    );
  });
});
