import { describe, expect, it } from 'vitest';
import {
  parseCompactorEnv,
  parseCompactorLease,
  parseCompactorTuning,
} from '../../../core/config/compactor.js';
import { EXIT } from '../../../core/config/exit-codes.js';
import { parseStreamEnv } from '../../../core/config/stream.js';
import { parseWorkerEnv } from '../../../core/config/worker.js';
import { crashHooksFromEnv } from '../../../core/testing/crash-points.js';

describe('program configuration from the environment (core/config)', () => {
  it('names the variable and the bad value, or says it is not set', () => {
    expect(() => parseCompactorTuning({ COMPACTOR_BATCH_SIZE: 'abc' })).toThrow(
      /COMPACTOR_BATCH_SIZE: .*\(got "abc"\)/,
    );
    expect(() => parseCompactorTuning({ COMPACTOR_GRACE_SECONDS: '-1' })).toThrow(
      /COMPACTOR_GRACE_SECONDS: must be a non-negative number/,
    );
    expect(() => parseCompactorTuning({ COMPACTOR_CHROMA_DELTA_MAX_MEMBERS: '0' })).toThrow(
      /COMPACTOR_CHROMA_DELTA_MAX_MEMBERS: must be a positive integer/,
    );
    expect(() => parseCompactorTuning({ COMPACTOR_CHROMA_DELTA_MAX_BYTES: '1e99x' })).toThrow(
      /COMPACTOR_CHROMA_DELTA_MAX_BYTES: .*\(got "1e99x"\)/,
    );
    expect(() => parseCompactorEnv({ LINES_QUEUE_URL: 'q' })).toThrow(/WORDS_QUEUE_URL: .*\(not set\)/);
    expect(() => parseWorkerEnv({ ARTIFACTS_BUCKET: 'a', LEDGER_TABLE: 't' })).toThrow(
      /VECTORS_BUCKET: .*\(not set\)/,
    );
    expect(() => parseStreamEnv({ STREAM_SWEEP_LIMIT: '1.5' })).toThrow(
      /STREAM_SWEEP_LIMIT: .*\(got "1.5"\)/,
    );
  });

  it('applies defaults, treats an empty value as unset and converts seconds to milliseconds', () => {
    expect(parseCompactorTuning({ COMPACTOR_GRACE_SECONDS: '2', COMPACTOR_BATCH_SIZE: '' })).toEqual({
      graceMs: 2000,
    });
    expect(parseCompactorTuning({ COMPACTOR_CHROMA_DELTA_MAX_ARCHIVE_BYTES: '1048576' })).toEqual({
      chromaDeltaMaxArchiveBytes: 1_048_576,
    });
    expect(parseCompactorLease({})).toMatchObject({
      namespace: 'default',
      name: 'embedctl-compactor',
      durationMs: 15_000,
    });
    expect(parseStreamEnv({ STREAM_PROCESSOR: 'off' })).toMatchObject({
      enabled: false,
      sink: true,
      checkpointConfigMap: 'embedctl-stream-checkpoint',
      sweep: { intervalMs: 600_000, afterMs: 1_800_000, limit: 500 },
    });
    expect(parseWorkerEnv({ VECTORS_BUCKET: 'v', ARTIFACTS_BUCKET: 'a', LEDGER_TABLE: 't' })).toMatchObject({
      chromaRoot: '/mnt/chroma',
      embedder: {},
    });
  });

  it('gives every exit code one meaning, the worker codes the podFailurePolicy relies on included', () => {
    expect(EXIT).toEqual({ ok: 0, failed: 1, usage: 2, sourceMissing: 3, leaseLost: 4 });
  });

  it('injects no crash hooks unless a variable asks for them', () => {
    expect(crashHooksFromEnv({})).toEqual({});
    expect(
      Object.keys(crashHooksFromEnv({ EMBEDCTL_CRASH_AT: 'after-copy', EMBEDCTL_CRASH_ON_RUN: 'r' })),
    ).toEqual(['step', 'runLoaded']);
  });
});
