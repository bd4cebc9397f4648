import { describe, expect, it } from 'vitest';
import type { EmbeddingJob, EmbeddingJobStatus } from '../../../../core/contracts/embedding-job.js';
import type { Job, Pod } from '../../../../core/kube/types.js';
import { retryDelayMs } from '../../../../core/jobs/lifecycle.js';
import { decide, type DecideInput } from '../../../../core/jobs/transitions.js';
import { MEMBERS_ANNOTATION } from '../../../../controller/worker-job.js';
import { workerContainer as worker } from '../../../support/container-status.js';

const now = new Date('2026-01-01T00:10:00Z');
const settings = {
  maxAttempts: 3,
  retryBaseMs: 10_000,
  retryMaxMs: 300_000,
  finishedTtlMs: 3_600_000,
  podRejectedGraceMs: 10_000,
  imagePullGraceMs: 60_000,
};

const ej = (status?: EmbeddingJobStatus): EmbeddingJob => ({
  apiVersion: 'embedding.receipts.dev/v1alpha1',
  kind: 'EmbeddingJob',
  metadata: {
    name: 'ej-a',
    namespace: 'ns',
    generation: 1,
    resourceVersion: '5',
    creationTimestamp: '2026-01-01T00:00:00Z',
  },
  spec: {
    imageId: '11111111-1111-1111-1111-111111111111',
    receiptId: 1,
    artifactsBucket: 'b',
    linesKey: 'l',
    wordsKey: 'w',
    priority: 0,
    collections: ['lines', 'words'],
    source: 'sqs',
  },
  ...(status ? { status } : {}),
});

const job = (
  name: string,
  conditions: Job['status'] extends infer S ? (S extends { conditions?: infer C } ? C : never) : never = [],
  created = '2026-01-01T00:09:00Z',
): Job => ({
  metadata: { name, creationTimestamp: created, annotations: { [MEMBERS_ANNOTATION]: 'ej-a:1' } },
  status: { conditions },
});

const pod = (status: Pod['status']): Pod => ({
  metadata: { name: 'p', creationTimestamp: '2026-01-01T00:09:01Z' },
  status,
});
const scheduled: EmbeddingJobStatus = { phase: 'Scheduled', attempts: 1, workerJob: 'ejw-1' };
const input = (over: Partial<DecideInput>): DecideInput => ({
  ej: ej(),
  claims: [],
  job: undefined,
  pods: [],
  now,
  settings,
  ...over,
});
const terminated = (exitCode: number, reason = 'Error') => ({
  phase: 'Failed' as const,
  containerStatuses: [worker({ terminated: { exitCode, reason } })],
});
const failedJob = (reason: string) =>
  job('ejw-1', [{ type: 'Failed', status: 'True', reason, message: reason }]);

describe('decide', () => {
  it('adopts the worker Job that claims the next attempt (Scheduled, attempts+1, report cleared)', () => {
    const d = decide(input({ claims: [{ job: job('ejw-1'), attempt: 1 }] }));
    expect(d.patch).toMatchObject({
      phase: 'Scheduled',
      attempts: 1,
      workerJob: 'ejw-1',
      report: null,
      nextAttemptTime: null,
    });
    expect(d.patch?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({
      status: 'True',
      reason: 'JobCreated',
      observedGeneration: 1,
    });
    expect(d.events[0]?.reason).toBe('Scheduled');
  });

  it('ignores claims for an attempt already taken', () => {
    expect(
      decide(
        input({ ej: ej({ ...scheduled }), claims: [{ job: job('ejw-1'), attempt: 1 }], job: job('ejw-1') }),
      ).patch,
    ).toBeUndefined();
  });

  describe('a refused worker ConfigMap', () => {
    const why = 'worker ConfigMap embedctl-worker refused: serviceAccountName: must be "embedctl-worker"';

    it('says why on a waiting EmbeddingJob (Scheduled=False, WorkerConfigRefused, a Warning)', () => {
      const d = decide(input({ workerConfigRefused: why }));
      expect(d.patch?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({
        status: 'False',
        reason: 'WorkerConfigRefused',
        message: why,
      });
      expect(d.patch?.message).toBe(why);
      expect(d.events).toEqual([{ type: 'Warning', reason: 'WorkerConfigRefused', message: why }]);
    });

    it('says it once: nothing to write when the condition already says so', () => {
      const first = decide(input({ workerConfigRefused: why }));
      const again = decide(
        input({ ej: ej({ conditions: first.patch!.conditions! }), workerConfigRefused: why }),
      );
      expect(again).toEqual({ events: [] });
    });
  });

  it('Running when the pod runs', () => {
    const d = decide(input({ ej: ej(scheduled), job: job('ejw-1'), pods: [pod({ phase: 'Running' })] }));
    expect(d.patch?.phase).toBe('Running');
  });

  it('Succeeded on a success report, from any attempt', () => {
    const d = decide(
      input({
        ej: ej({
          ...scheduled,
          report: { workerJob: 'old', outcome: 'Succeeded' },
          result: { runId: 'r', lines: 3, rows: 2, words: 9 },
        }),
        claims: [{ job: job('old'), attempt: 1 }],
        job: job('ejw-1'),
      }),
    );
    expect(d.patch).toMatchObject({ phase: 'Succeeded', completionTime: now.toISOString() });
    expect(d.patch?.conditions?.find((c) => c.type === 'Succeeded')?.message).toContain('9 words');
  });

  describe('a report counts only from a worker Job that claims the EmbeddingJob (any worker token may patch it)', () => {
    const forged = (outcome: 'Succeeded' | 'Failed', workerJob: string) =>
      ej({
        ...scheduled,
        report: { workerJob, outcome, reason: 'BadInput', message: 'forged' },
        result: { runId: 'r', lines: 1, rows: 1, words: 1 },
      });

    it.each(['Succeeded', 'Failed'] as const)(
      'a %s report naming a Job that claims another EmbeddingJob is ignored',
      (outcome) => {
        // ejw-1 claims ej-a (the claims list); the report names ejw-other, which does not.
        const d = decide(
          input({
            ej: forged(outcome, 'ejw-other'),
            claims: [{ job: job('ejw-1'), attempt: 1 }],
            job: job('ejw-1'),
          }),
        );
        expect(d.patch?.phase).toBeUndefined();
        expect(d.events).toEqual([]);
      },
    );

    it('a Failed report naming the status workerJob is ignored when no Job with that name claims it', () => {
      // The forger also patched status.workerJob; no cached Job claims ej-a.
      const d = decide(input({ ej: forged('Failed', 'ejw-1'), claims: [], job: job('ejw-1') }));
      expect(d.patch?.phase).toBeUndefined();
    });
  });

  it.each([
    { case: 'a BadInput report fails at once', report: 'BadInput', phase: 'Failed', reason: 'BadInput' },
    {
      case: 'a SourceMissing report fails at once',
      report: 'SourceMissing',
      phase: 'Failed',
      reason: 'SourceMissing',
    },
    { case: 'a Transient report retries', report: 'Transient', phase: 'Pending', reason: 'Transient' },
  ] as const)('$case', ({ report, phase, reason }) => {
    const d = decide(
      input({
        ej: ej({
          ...scheduled,
          report: { workerJob: 'ejw-1', outcome: 'Failed', reason: report, message: 'row 7' },
        }),
        claims: [{ job: job('ejw-1'), attempt: 1 }],
        job: job('ejw-1'),
      }),
    );
    expect(d.patch?.phase).toBe(phase);
    expect(d.events[0]).toMatchObject({ type: 'Warning', reason });
  });

  it.each([
    {
      case: 'exit 2 → BadInput, no retry',
      job: failedJob('PodFailurePolicy'),
      pod: terminated(2),
      phase: 'Failed',
      reason: 'BadInput',
    },
    {
      case: 'exit 3 → SourceMissing, no retry',
      job: failedJob('PodFailurePolicy'),
      pod: terminated(3),
      phase: 'Failed',
      reason: 'SourceMissing',
    },
    {
      case: 'OOMKilled → retry',
      job: failedJob('BackoffLimitExceeded'),
      pod: terminated(137, 'OOMKilled'),
      phase: 'Pending',
      reason: 'OOMKilled',
    },
    {
      case: 'deadline → retry',
      job: failedJob('DeadlineExceeded'),
      pod: undefined,
      phase: 'Pending',
      reason: 'DeadlineExceeded',
    },
    {
      case: 'exit 1 → retry',
      job: failedJob('BackoffLimitExceeded'),
      pod: terminated(1),
      phase: 'Pending',
      reason: 'WorkerError',
    },
  ])('$case', ({ job: j, pod: p, phase, reason }) => {
    const d = decide(input({ ej: ej(scheduled), job: j, pods: p ? [pod(p)] : [] }));
    expect(d.patch?.phase).toBe(phase);
    expect(d.events[0]?.reason).toBe(reason);
  });

  it('retries with exponential backoff and gives up after maxAttempts', () => {
    const first = decide(
      input({ ej: ej(scheduled), job: failedJob('BackoffLimitExceeded'), pods: [pod(terminated(1))] }),
    );
    expect(first.patch?.nextAttemptTime).toBe(new Date(now.getTime() + 10_000).toISOString());
    expect(first.patch?.conditions?.find((c) => c.type === 'Retrying')?.status).toBe('True');
    expect(retryDelayMs(3, 10_000, 300_000)).toBe(40_000);
    expect(retryDelayMs(30, 10_000, 300_000)).toBe(300_000);
    const last = decide(
      input({
        ej: ej({ ...scheduled, attempts: 3 }),
        job: failedJob('BackoffLimitExceeded'),
        pods: [pod(terminated(1))],
      }),
    );
    expect(last.patch?.phase).toBe('Failed');
    expect(last.patch?.message).toContain('gave up after 3 attempt(s)');
  });

  it('asks for a live lookup when the Job is not cached, and returns the item to Pending when it is gone', () => {
    expect(decide(input({ ej: ej(scheduled), job: 'unknown' })).lookupJob).toBe('ejw-1');
    const d = decide(input({ ej: ej(scheduled), job: 'gone' }));
    expect(d.patch?.phase).toBe('Pending');
    expect(d.events[0]?.reason).toBe('WorkerJobVanished');
  });

  it('a Job that completes without reporting the item: waits briefly, then retries with NoReport', () => {
    const at = (s: number) =>
      job('ejw-1', [
        {
          type: 'Complete',
          status: 'True',
          lastTransitionTime: new Date(now.getTime() - s * 1000).toISOString(),
        },
      ]);
    expect(decide(input({ ej: ej(scheduled), job: at(1) })).requeueAfterMs).toBe(4_000);
    expect(decide(input({ ej: ej(scheduled), job: at(10) })).events[0]?.reason).toBe('NoReport');
  });

  it('PodRejected (admission) fails without retry and deletes the Job', () => {
    const j = job('ejw-1', [], '2026-01-01T00:09:00Z');
    expect(decide(input({ ej: ej(scheduled), job: j })).lookupEvents).toBe('ejw-1');
    const d = decide(
      input({ ej: ej(scheduled), job: j, podRejected: 'violates PodSecurity "restricted:latest"' }),
    );
    expect(d.patch?.phase).toBe('Failed');
    expect(d.deleteJob).toBe('ejw-1');
    expect(d.patch?.conditions?.find((c) => c.type === 'Failed')?.reason).toBe('PodRejected');
  });

  it('surfaces image pull trouble once as a condition', () => {
    const p = pod({
      phase: 'Pending',
      containerStatuses: [worker({ waiting: { reason: 'ImagePullBackOff', message: 'nope' } })],
    });
    const d = decide(input({ ej: ej(scheduled), job: job('ejw-1'), pods: [p] }));
    expect(d.patch?.conditions?.find((c) => c.type === 'Running')).toMatchObject({
      status: 'False',
      reason: 'ImagePull',
    });
    const again = decide(
      input({ ej: ej({ ...scheduled, conditions: d.patch!.conditions! }), job: job('ejw-1'), pods: [p] }),
    );
    expect(again.patch).toBeUndefined();
    expect(again.requeueAfterMs).toBeGreaterThan(0);
  });

  it('gives up a pod that cannot get its image after the grace: deletes the Job and retries, then fails', () => {
    const stuck = (created: string): Pod => ({
      metadata: { name: 'p', creationTimestamp: created },
      status: {
        phase: 'Pending',
        containerStatuses: [worker({ waiting: { reason: 'ErrImageNeverPull', message: 'not present' } })],
      },
    });
    const young = decide(
      input({ ej: ej(scheduled), job: job('ejw-1'), pods: [stuck('2026-01-01T00:09:30Z')] }),
    );
    expect(young.deleteJob).toBeUndefined();
    expect(young.requeueAfterMs).toBe(30_000);
    const old = stuck('2026-01-01T00:08:59Z');
    const d = decide(input({ ej: ej(scheduled), job: job('ejw-1'), pods: [old] }));
    expect(d.deleteJob).toBe('ejw-1');
    expect(d.patch?.phase).toBe('Pending');
    expect(d.patch?.conditions?.find((c) => c.type === 'Retrying')?.reason).toBe('ImagePull');
    const last = decide(input({ ej: ej({ ...scheduled, attempts: 3 }), job: job('ejw-1'), pods: [old] }));
    expect(last.patch?.phase).toBe('Failed');
    expect(last.patch?.message).toContain('ErrImageNeverPull');
  });

  it('deletes finished EmbeddingJobs after the TTL', () => {
    const done = (t: string) => ej({ phase: 'Succeeded', completionTime: t });
    expect(decide(input({ ej: done('2026-01-01T00:09:00Z') })).requeueAfterMs).toBe(3_540_000);
    expect(decide(input({ ej: done('2025-12-31T00:00:00Z') })).deleteEmbeddingJob).toBe(true);
  });
});
