import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddingJob, WorkerReport } from '../../../../core/contracts/embedding-job.js';
import { admitEmbedMessage } from '../../../../core/jobs/admission.js';
import { outcomeVerdict, type Outcome, type RetrySettings } from '../../../../core/jobs/lifecycle.js';
import { decide } from '../../../../core/jobs/transitions.js';
import { KubeJobStore } from '../../../../core/kube/embedding-job-store.js';
import type { StatusPatch } from '../../../../core/kube/embedding-jobs.js';
import { LocalJobTable } from '../../../../core/local/job-table.js';
import type { JobStore } from '../../../../core/ports/job-store.js';

/**
 * Both modes make the same decision for the same facts: one fact sequence driven through the shared lifecycle
 * (admission, outcome verdicts) with the SQLite store and with the Kubernetes store over an in-memory API server.
 * Launching is each mode's own (a claimed row; a worker Job the status reconciler adopts), as in production.
 */
const settings: RetrySettings = { maxAttempts: 3, retryBaseMs: 1_000, retryMaxMs: 30_000 };
const t0 = Date.parse('2026-01-01T00:00:00.000Z');

interface Mode {
  store: JobStore;
  /** The worker `workerJob` takes the job's next attempt at `at`. */
  launch(name: string, workerJob: string, at: number): Promise<void>;
  /** The worker writes its report (only `report`: the worker's part of the contract). */
  writeReport(name: string, report: WorkerReport): Promise<void>;
}

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function sqliteMode(): Mode {
  dir = mkdtempSync(join(tmpdir(), 'lifecycle-'));
  const table = LocalJobTable.open(join(dir, 'jobs.sqlite'));
  return {
    store: table,
    launch: async (name, workerJob, at) => {
      const claimed = table.claim(workerJob, 100, at).map((j) => j.name);
      expect(claimed).toContain(name);
      table.markRunning(claimed);
    },
    writeReport: async (name, report) => void table.report(name, report),
  };
}

/** An API server of one namespace: create (409 → created: false) and status merge patches. */
function kubeMode(): Mode {
  const objects = new Map<string, EmbeddingJob>();
  let rv = 0;
  const client = {
    create: async (ej: EmbeddingJob) => {
      if (objects.has(ej.metadata.name)) return { created: false };
      objects.set(ej.metadata.name, {
        ...ej,
        metadata: { ...ej.metadata, generation: 1, resourceVersion: String(++rv) },
      });
      return { created: true };
    },
    patchStatus: async (_ns: string, name: string, patch: StatusPatch, resourceVersion?: string) => {
      const ej = objects.get(name)!;
      if (resourceVersion && resourceVersion !== ej.metadata.resourceVersion) throw new Error('409 Conflict');
      const status: Record<string, unknown> = { ...ej.status };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete status[k];
        else status[k] = v;
      }
      const next = { ...ej, metadata: { ...ej.metadata, resourceVersion: String(++rv) }, status };
      objects.set(name, next);
      return next;
    },
  };
  const store = new KubeJobStore({ client, cache: objects, namespace: 'ns' });
  return {
    store,
    launch: async (name, workerJob, at) => {
      const ej = objects.get(name)!;
      const attempt = (ej.status?.attempts ?? 0) + 1;
      const job = { metadata: { name: workerJob, creationTimestamp: new Date(at).toISOString() } };
      const d = decide({
        ej,
        claims: [{ job, attempt }],
        job,
        pods: [],
        now: new Date(at),
        settings: {
          ...settings,
          finishedTtlMs: 3_600_000,
          podRejectedGraceMs: 10_000,
          imagePullGraceMs: 60_000,
        },
      });
      expect(d.patch?.phase).toBe('Scheduled');
      await client.patchStatus('ns', name, d.patch!, ej.metadata.resourceVersion);
    },
    writeReport: async (name, report) => void (await client.patchStatus('ns', name, { report })),
  };
}

const body = (receipt: number, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    image_id: '3f52804b-2fad-4e00-92c8-b593da3a8ed3',
    receipt_id: receipt,
    artifacts_bucket: 'receipts',
    lines_key: `r${receipt}/lines.ndjson`,
    words_key: `r${receipt}/words.ndjson`,
    ...over,
  });

/** Ingest as both modes do it: the admission rule, then the store. */
async function ingest(store: JobStore, text: string) {
  const admitted = admitEmbedMessage(text, ['receipts']);
  if (!admitted.ok) return { deadLetter: admitted.reason };
  return store.create(admitted.message, 'sqs');
}

/** The shared lifecycle step: what the outcome does to the job, written by the store. */
async function settle(m: Mode, name: string, outcome: Outcome, at: number) {
  const verdict = outcomeVerdict(m.store.get(name)!, outcome, settings);
  if (verdict) await m.store.settle(name, verdict, new Date(at));
  const job = m.store.get(name)!;
  return {
    verdict,
    phase: job.phase,
    attempts: job.attempts,
    reason: job.reason,
    retryInMs:
      job.phase === 'Pending' && job.nextAttemptAt !== undefined ? job.nextAttemptAt - at : undefined,
  };
}

/** The fact sequence; returns everything either mode decided, in order. */
async function run(m: Mode) {
  const ingested = [];
  for (const text of [
    body(1),
    body(1), // a redelivery
    '{not json',
    body(4, { image_id: 'nope' }),
    body(5, { artifacts_bucket: 'someone-elses-bucket' }),
    body(6, { lines_key: '../escape' }),
  ])
    ingested.push(await ingest(m.store, text));
  // Each job is created when its story starts, so a launch claims that job alone.
  const create = async (receipt: number) => {
    const r = await ingest(m.store, body(receipt));
    ingested.push(r);
    return 'name' in r ? r.name : '';
  };
  const a = 'name' in ingested[0]! ? ingested[0].name : '';
  const steps = [];
  let at = t0;

  // a: fails, retries after the backoff, fails again (transient report), then succeeds.
  await m.launch(a, 'w1', at);
  steps.push(await settle(m, a, { failure: 'WorkerError', message: 'worker w1 exit 1' }, (at += 500)));
  at += steps.at(-1)!.retryInMs!;
  await m.launch(a, 'w2', at);
  await m.writeReport(a, { workerJob: 'w2', outcome: 'Failed', reason: 'Transient', message: 'throttled' });
  steps.push(await settle(m, a, { report: m.store.get(a)!.report! }, (at += 500)));
  at += steps.at(-1)!.retryInMs!;
  await m.launch(a, 'w3', at);
  await m.writeReport(a, { workerJob: 'w3', outcome: 'Succeeded' });
  steps.push(await settle(m, a, { report: m.store.get(a)!.report! }, (at += 500)));
  // A late fact about a finished job changes nothing.
  steps.push(await settle(m, a, { failure: 'NoReport', message: 'late' }, (at += 500)));

  // b: bad input fails at once, whatever attempts are left.
  const b = await create(2);
  await m.launch(b, 'w4', at);
  steps.push(await settle(m, b, { failure: 'BadInput', message: 'worker exited 2' }, (at += 500)));

  // c: runs out of attempts.
  const c = await create(3);
  for (let i = 1; i <= settings.maxAttempts; i++) {
    await m.launch(c, `w-c${i}`, at);
    steps.push(await settle(m, c, { failure: 'DeadlineExceeded', message: 'deadline' }, (at += 500)));
    at += steps.at(-1)!.retryInMs ?? 0;
  }
  return { ingested, steps };
}

describe('one lifecycle, two stores', () => {
  it('the SQLite store and the Kubernetes store reach the same decisions for the same facts', async () => {
    const local = await run(sqliteMode());
    const kube = await run(kubeMode());
    expect(kube).toEqual(local);

    // And the decisions are the documented ones (controller/README.md).
    expect(local.ingested.map((r) => ('created' in r ? r.created : 'dead-lettered'))).toEqual([
      true,
      false,
      ...Array<string>(4).fill('dead-lettered'),
      true,
      true,
    ]);
    expect(local.ingested.slice(2, 6)).toEqual([
      { deadLetter: expect.stringMatching(/^InvalidMessage: body is not JSON: /) },
      { deadLetter: 'InvalidMessage: image_id: must be a UUID' },
      {
        deadLetter: expect.stringMatching(
          /^InvalidMessage: field artifacts_bucket: bucket "someone-elses-bucket" is not an allowed/,
        ),
      },
      { deadLetter: expect.stringMatching(/^InvalidMessage: field lines_key: /) },
    ]);
    expect(
      local.steps.map(({ phase, attempts, reason, retryInMs }) => [phase, attempts, reason, retryInMs]),
    ).toEqual([
      ['Pending', 1, 'WorkerError', 1_000],
      ['Pending', 2, 'Transient', 2_000],
      ['Succeeded', 3, 'Completed', undefined],
      ['Succeeded', 3, 'Completed', undefined],
      ['Failed', 1, 'BadInput', undefined],
      ['Pending', 1, 'DeadlineExceeded', 1_000],
      ['Pending', 2, 'DeadlineExceeded', 2_000],
      ['Failed', 3, 'DeadlineExceeded', undefined],
    ]);
    expect(local.steps[3]!.verdict).toBeUndefined();
    expect(local.steps.at(-1)!.verdict).toMatchObject({ phase: 'Failed', gaveUp: true });
  });
});
