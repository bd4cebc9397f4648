import { describe, expect, it } from 'vitest';
import type { RunCollection, RunState } from '../../../core/contracts/compaction-run.js';
import { TransientError } from '../../../core/errors.js';
import {
  crashLoopReason,
  failureReason,
  reasonKind,
  repeatedFailure,
  runOf,
  stillOpen,
} from '../../../compactor/give-up.js';

const IMG = '3f2a1b4c-0000-4000-8000-000000000001';
const body = (over: Record<string, unknown> = {}, data: Record<string, unknown> = {}) =>
  JSON.stringify({
    source: 'dynamodb_stream',
    entity_type: 'COMPACTION_RUN',
    event_name: 'INSERT',
    entity_data: { image_id: IMG, receipt_id: 1, run_id: 'r1', ...data },
    timestamp: '2026-01-01T00:00:00Z',
    stream_record_id: 's1',
    ...over,
  });

describe('the run a given-up message announces', () => {
  it.each([
    { name: 'a CompactionRun INSERT', body: body(), want: { imageId: IMG, receiptId: 1, runId: 'r1' } },
    {
      name: 'a receipt id given as a string',
      body: body({}, { receipt_id: '7' }),
      want: { imageId: IMG, receiptId: 7, runId: 'r1' },
    },
    { name: 'a CompactionRun MODIFY', body: body({ event_name: 'MODIFY' }), want: undefined },
    { name: 'another entity', body: body({ entity_type: 'RECEIPT_PLACE' }), want: undefined },
    { name: 'no run id', body: body({}, { run_id: undefined }), want: undefined },
    { name: 'a receipt id that is no integer', body: body({}, { receipt_id: 'x' }), want: undefined },
    { name: 'an image id that is no string', body: body({}, { image_id: 5 }), want: undefined },
    {
      name: 'a body that is no CompactionMessage',
      body: '{"entity_type":"COMPACTION_RUN"}',
      want: undefined,
    },
    { name: 'a body that is no JSON', body: 'not json', want: undefined },
  ])('$name', ({ body, want }) => {
    expect(runOf({ body })).toEqual(want);
  });
});

describe('when a failed message is given up on, and with what reason', () => {
  it.each([
    { receiveCount: 1, maxReceives: 20, want: undefined },
    { receiveCount: 19, maxReceives: 20, want: undefined },
    { receiveCount: 20, maxReceives: 20, want: 'RepeatedFailure: failed 20 times; last: Transient: down' },
    { receiveCount: 25, maxReceives: 20, want: 'RepeatedFailure: failed 25 times; last: Transient: down' },
    { receiveCount: 1, maxReceives: 1, want: 'RepeatedFailure: failed 1 times; last: Transient: down' },
  ])('received $receiveCount of $maxReceives times → $want', ({ receiveCount, maxReceives, want }) => {
    expect(repeatedFailure({ receiveCount }, maxReceives, 'Transient: down')).toBe(want);
  });

  it.each([
    { err: new TransientError('chroma down'), want: 'Transient: chroma down' },
    { err: new Error('plain'), want: 'plain' },
    { err: 'a string', want: 'a string' },
  ])('failure reason of $err', ({ err, want }) => {
    expect(failureReason(err)).toBe(want);
  });

  it('a crash-looping message names its deaths', () => {
    expect(crashLoopReason({ deaths: 4, alone: 2 })).toBe(
      'CrashLoop: the compactor died 4 times with this message in its batch, 2 times with it alone',
    );
  });

  it.each([
    { reason: 'CrashLoop: the compactor died …', want: 'CrashLoop' },
    { reason: 'RepeatedFailure: failed 20 times; last: Transient: x', want: 'RepeatedFailure' },
    { reason: 'InvalidMessage', want: 'InvalidMessage' },
  ])('the DLQ metric label of "$reason" is $want', ({ reason, want }) => {
    expect(reasonKind(reason)).toBe(want);
  });
});

describe('which runs a given-up message FAILs', () => {
  const rc = (state: RunState): RunCollection => ({
    state,
    format: 'arrow',
    deltaKey: 'k',
    sha256: 's',
    vectors: 1,
  });
  it.each<{ rc: RunCollection | undefined; want: boolean }>([
    { rc: rc('PENDING'), want: true },
    { rc: rc('PROCESSING'), want: true },
    { rc: rc('COMPLETED'), want: false },
    { rc: rc('FAILED'), want: false },
    { rc: undefined, want: false }, // the run does not carry this collection (or is gone)
  ])('$rc.state → $want', ({ rc, want }) => {
    expect(stillOpen(rc)).toBe(want);
  });
});
