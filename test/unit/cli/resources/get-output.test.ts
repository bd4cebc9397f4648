// Golden output of `embedctl get` for every -o (issue 16 part 3): fixed objects and a fixed clock, compared with the
// files in __golden__/ (regenerate with `npx vitest run --project unit test/unit/cli/resources -u` and review the diff).
import { describe, expect, it } from 'vitest';
import { describeJob, describeRun, describeSnapshot } from '../../../../cli/resources/describe.js';
import { KINDS, kindArg, type KindName } from '../../../../cli/resources/kinds.js';
import { OUTPUTS, render } from '../../../../cli/resources/output.js';
import { localJobAsEmbeddingJob, type DeadLetterView } from '../../../../cli/resources/views.js';
import { waitConditionArg, waitVerdict } from '../../../../cli/resources/wait-for.js';
import type { CompactionRunItem } from '../../../../core/contracts/compaction-run.js';
import type { EmbeddingJob } from '../../../../core/contracts/embedding-job.js';
import type { LocalJob } from '../../../../core/local/job-table.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');
const IMAGE = '3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b';
const spec = (receiptId: number) => ({
  imageId: IMAGE,
  receiptId,
  artifactsBucket: 'receipts',
  linesKey: `receipts/${receiptId}/lines.ndjson`,
  wordsKey: `receipts/${receiptId}/words.ndjson`,
  priority: 0,
  collections: ['lines' as const, 'words' as const],
  source: 'sqs' as const,
});

const succeeded: EmbeddingJob = {
  apiVersion: 'embedding.receipts.dev/v1alpha1',
  kind: 'EmbeddingJob',
  metadata: {
    name: 'ej-3f2a9c1e-1-aaaa0001',
    namespace: 'receipts',
    creationTimestamp: '2026-12-06T11:55:00Z',
  },
  spec: spec(1),
  status: {
    phase: 'Succeeded',
    attempts: 1,
    workerJob: 'embed-batch-1',
    startTime: '2026-12-06T11:55:05Z',
    completionTime: '2026-12-06T11:55:40Z',
    result: { runId: 'run-1', lines: 40, rows: 31, words: 212, merchant: 'SPROUTS', durationMs: 35000 },
    compaction: { lines: 'Completed', words: 'Completed' },
    conditions: [
      {
        type: 'Running',
        status: 'False',
        reason: 'Completed',
        message: '',
        lastTransitionTime: '2026-12-06T11:55:40Z',
      },
      {
        type: 'Compacted',
        status: 'True',
        reason: 'Compacted',
        message: 'lines and words merged into a published snapshot',
        lastTransitionTime: '2026-12-06T11:56:10Z',
      },
    ],
    message: '31 rows, 212 words',
  },
};

const failedLocal: LocalJob = {
  name: 'ej-3f2a9c1e-2-bbbb0002',
  spec: spec(2),
  phase: 'Failed',
  attempts: 3,
  createdAt: Date.parse('2026-12-04T09:00:00Z'),
  startTime: Date.parse('2026-12-04T09:00:02Z'),
  completionTime: Date.parse('2026-12-04T09:10:00Z'),
  reason: 'SourceMissing',
  message: 'gave up after 3 attempt(s): s3://receipts/receipts/2/lines.ndjson does not exist',
  compaction: {},
};

const jobs = [succeeded, localJobAsEmbeddingJob(failedLocal)];

const run: CompactionRunItem = {
  PK: `IMAGE#${IMAGE}`,
  SK: 'RECEIPT#00001#COMPACTION_RUN#run-1',
  TYPE: 'COMPACTION_RUN',
  run_id: 'run-1',
  image_id: IMAGE,
  receipt_id: 1,
  job_name: 'ej-3f2a9c1e-1-aaaa0001',
  model: 'text-embedding-3-small',
  dimensions: 1536,
  created_at: '2026-12-06T11:55:30Z',
  updated_at: '2026-12-06T11:56:10Z',
  lines_state: 'COMPLETED',
  lines_delta_key: 'lines/delta/run-1/delta.arrow',
  lines_sha256: 'a'.repeat(64),
  lines_vectors: 31,
  words_state: 'PROCESSING',
  words_delta_key: 'words/delta/run-1/delta.arrow',
  words_sha256: 'b'.repeat(64),
  words_vectors: 212,
};

const snapshots = [
  { collection: 'lines' as const, current: 'v0002', versions: ['v0001', 'v0002'], pointer: 'v0002' },
  { collection: 'words' as const, versions: [] },
];

const deadLetters: DeadLetterView[] = [
  {
    kind: 'message',
    id: 'msg-1',
    queue: 'EMBED',
    body: '{"image_id":"not-a-uuid"}',
    reason: 'InvalidMessage: image_id must be a UUID',
    receiveCount: 1,
    sentAt: Date.parse('2026-12-06T10:00:00Z'),
    deadAt: Date.parse('2026-12-06T10:00:01Z'),
  },
];
const dlqDepths: DeadLetterView[] = [{ kind: 'queue', queue: 'embed-dlq', visible: 2, inFlight: 0 }];

const fixtures: Record<KindName, unknown[]> = { jobs, runs: [run], snapshots, deadletters: deadLetters };

describe('embedctl get: golden output', () => {
  for (const [kind, items] of Object.entries(fixtures) as [KindName, unknown[]][])
    for (const output of OUTPUTS)
      it(`get ${kind} -o ${output}`, async () => {
        const text = render(items, output, (i) => KINDS[kind].row(i, NOW), { empty: KINDS[kind].empty });
        await expect(text).toMatchFileSnapshot(`__golden__/get-${kind}.${output}`);
      });

  it('get deadletters --cloud shows each SQS dead-letter queue by its depth', async () => {
    const text = render(dlqDepths, 'table', (i) => KINDS.deadletters.row(i, NOW), { empty: '' });
    await expect(text).toMatchFileSnapshot('__golden__/get-deadletters-cloud.table');
  });

  it('one named object is printed bare, an empty list says so', () => {
    expect(
      JSON.parse(render([succeeded], 'json', () => ({ cells: {}, wide: {} }), { empty: '', single: true })),
    ).toEqual(succeeded);
    expect(render([], 'table', (i) => KINDS.jobs.row(i, NOW), { empty: KINDS.jobs.empty })).toBe(
      'No jobs found.\n',
    );
  });

  it('describe job, run and snapshot', async () => {
    await expect(describeJob(succeeded)).toMatchFileSnapshot('__golden__/describe-job.txt');
    await expect(describeJob(localJobAsEmbeddingJob(failedLocal))).toMatchFileSnapshot(
      '__golden__/describe-job-failed.txt',
    );
    await expect(describeRun(run)).toMatchFileSnapshot('__golden__/describe-run.txt');
    await expect(describeSnapshot(snapshots[0]!)).toMatchFileSnapshot('__golden__/describe-snapshot.txt');
  });
});

describe('kinds and wait conditions', () => {
  it('accepts kubectl-style names for each kind', () => {
    expect(['jobs', 'ej', 'EmbeddingJobs', 'job'].map(kindArg)).toEqual(['jobs', 'jobs', 'jobs', 'jobs']);
    expect(kindArg('dlq')).toBe('deadletters');
    expect(() => kindArg('pods')).toThrow('Expected jobs, runs, snapshots or deadletters.');
  });

  it('wait: met, failed or waiting per job', () => {
    expect(waitConditionArg('condition=compacted')).toBe('Compacted');
    expect(() => waitConditionArg('Compacted')).toThrow(
      'Expected condition=Succeeded or condition=Compacted.',
    );
    expect(waitVerdict(succeeded, 'Compacted')).toBe('met');
    expect(waitVerdict(jobs[1]!, 'Succeeded')).toBe('failed');
    const merging = {
      ...succeeded,
      status: { ...succeeded.status, compaction: { lines: 'Completed' as const } },
    };
    expect(waitVerdict(merging, 'Succeeded')).toBe('met');
    expect(waitVerdict(merging, 'Compacted')).toBe('waiting');
    const broken = {
      ...succeeded,
      status: { ...succeeded.status, compaction: { words: 'Failed' as const } },
    };
    expect(waitVerdict(broken, 'Compacted')).toBe('failed');
  });
});
