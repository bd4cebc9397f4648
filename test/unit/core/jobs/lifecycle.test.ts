import { describe, expect, it } from 'vitest';
import {
  exitFailureReason,
  failureVerdict,
  finalReportVerdict,
  outcomeVerdict,
  reportVerdict,
  retryDelayMs,
} from '../../../../core/jobs/lifecycle.js';

const s = { maxAttempts: 3, retryBaseMs: 1_000, retryMaxMs: 5_000 };

describe('the shared lifecycle', () => {
  it('retries with a doubling, capped delay until the attempts run out', () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 1_000, 5_000))).toEqual([
      1_000, 2_000, 4_000, 5_000, 5_000,
    ]);
    expect(failureVerdict('WorkerError', 'boom', 2, s)).toEqual({
      phase: 'Pending',
      reason: 'WorkerError',
      message: 'boom',
      retryInMs: 2_000,
    });
    expect(failureVerdict('WorkerError', 'boom', 3, s)).toEqual({
      phase: 'Failed',
      reason: 'WorkerError',
      message: 'boom',
      gaveUp: true,
    });
  });

  it.each(['BadInput', 'SourceMissing', 'PodRejected'] as const)('%s fails at once', (reason) => {
    expect(failureVerdict(reason, 'no', 1, s)).toEqual({
      phase: 'Failed',
      reason,
      message: 'no',
      gaveUp: false,
    });
  });

  it('a failure report is BadInput or SourceMissing when the worker says so, Transient otherwise', () => {
    const failed = { workerJob: 'w', outcome: 'Failed' as const };
    expect(reportVerdict({ ...failed, reason: 'SourceMissing', message: 'gone' }, 1, s)).toMatchObject({
      phase: 'Failed',
      reason: 'SourceMissing',
    });
    expect(reportVerdict(failed, 1, s)).toEqual({
      phase: 'Pending',
      reason: 'Transient',
      message: 'worker reported a failure',
      retryInMs: 1_000,
    });
    expect(reportVerdict({ workerJob: 'w', outcome: 'Succeeded' }, 3, s)).toEqual({ phase: 'Succeeded' });
  });

  it('a report ends the job whatever its attempts only when no retry could change it', () => {
    expect(finalReportVerdict({ workerJob: 'w', outcome: 'Succeeded' })).toEqual({ phase: 'Succeeded' });
    expect(finalReportVerdict({ workerJob: 'w', outcome: 'Failed', reason: 'BadInput' })).toMatchObject({
      phase: 'Failed',
      reason: 'BadInput',
    });
    expect(finalReportVerdict({ workerJob: 'w', outcome: 'Failed', reason: 'Transient' })).toBeUndefined();
  });

  it('exit codes 2 and 3 name the input; a finished job takes no verdict', () => {
    expect([0, 1, 2, 3, null].map(exitFailureReason)).toEqual([
      undefined,
      undefined,
      'BadInput',
      'SourceMissing',
      undefined,
    ]);
    const late = { failure: 'NoReport' as const, message: 'late' };
    expect(outcomeVerdict({ phase: 'Succeeded', attempts: 1 }, late, s)).toBeUndefined();
    expect(outcomeVerdict({ phase: 'Failed', attempts: 1 }, late, s)).toBeUndefined();
    expect(outcomeVerdict({ phase: 'Running', attempts: 1 }, late, s)).toMatchObject({ phase: 'Pending' });
  });
});
