import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EmbeddingJob } from '../../../core/contracts/embedding-job.js';
import type { EmbeddingJobClient } from '../../../core/kube/embedding-jobs.js';
import type { Informer } from '../../../core/kube/informer.js';
import type { Queue, QueueMessage } from '../../../core/ports/queue.js';
import { IngestSettings } from '../../../controller/config.js';
import { Ingest } from '../../../controller/ingest.js';
import { ControllerMetrics } from '../../../controller/metrics.js';

const body = (i: number, over: Record<string, unknown> = {}) => {
  const hex = i.toString(16).padStart(12, '0');
  return JSON.stringify({
    image_id: `0000${hex.slice(0, 4)}-0000-4000-8000-${hex}`,
    receipt_id: 1,
    artifacts_bucket: 'artifacts',
    lines_key: `r/${i}/lines.ndjson`,
    words_key: `r/${i}/words.ndjson`,
    ...over,
  });
};

/** A queue that hands out `batches` (one per receive), then long-polls empty; records deletes. */
function fakeQueue(batches: QueueMessage[][]) {
  const deleted: string[][] = [];
  const deadLettered: { id: string; reason: string }[] = [];
  let receives = 0;
  const queue = {
    name: 'q',
    receive: async (o: { signal?: AbortSignal } = {}) => {
      receives++;
      const next = batches.shift();
      if (next) return next;
      await new Promise((r) => {
        const t = setTimeout(r, 50);
        o.signal?.addEventListener('abort', () => (clearTimeout(t), r(undefined)), { once: true });
      });
      return [];
    },
    deleteBatch: async (handles: string[]) => void deleted.push(handles),
    deadLetter: async (m: QueueMessage, reason: string) => void deadLettered.push({ id: m.id, reason }),
  } as unknown as Queue;
  return { queue, deleted, deadLettered, receives: () => receives };
}

const msg = (i: number, over: Record<string, unknown> = {}): QueueMessage => ({
  id: `m${i}`,
  handle: `h${i}`,
  body: body(i, over),
  attributes: {},
  receiveCount: 1,
});

function ingestWith(queue: Queue, create: (ej: EmbeddingJob) => Promise<{ created: boolean }>) {
  const ejs = {
    on() {
      return this;
    },
    get: () => undefined,
    waitForSync: async () => undefined,
  } as unknown as Informer<EmbeddingJob>;
  return new Ingest({
    queue,
    ejClient: { create } as unknown as EmbeddingJobClient,
    ejs,
    namespace: 'ns',
    settings: IngestSettings.parse({ pollers: 1, waitSeconds: 0, maxOutstanding: 1000 }),
    artifactBuckets: ['artifacts', 'artifacts-eu'],
    metrics: new ControllerMetrics(new Registry()),
    log: pino({ level: 'silent' }),
  });
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
};

describe('Ingest', () => {
  it('receives again while earlier creates run; batches deletes; shutdown waits for both', async () => {
    const q = fakeQueue([[msg(1), msg(2)], [msg(3), msg(4)], [msg(5)]]);
    const release: (() => void)[] = [];
    const ingest = ingestWith(q.queue, () => new Promise((r) => release.push(() => r({ created: true }))));
    const stop = new AbortController();
    const running = ingest.start(stop.signal);
    await until(() => release.length === 5); // all three receives happened, no create finished yet
    expect(q.deleted).toEqual([]);
    stop.abort();
    for (const r of release) r();
    await running;
    // Deleted once each, in batches of ≤ 10 (stored messages of several receives share one).
    expect(q.deleted.flat().sort()).toEqual(['h1', 'h2', 'h3', 'h4', 'h5']);
    expect(q.deleted.every((d) => d.length <= 10)).toBe(true);
  });

  it('never deletes a message whose create failed', async () => {
    const q = fakeQueue([[msg(1), msg(2), msg(3)]]);
    let n = 0;
    const ingest = ingestWith(q.queue, async () => {
      if (++n === 2) throw new Error('apiserver unavailable');
      return { created: n !== 3 }; // the third is a redelivery (409): stored, so deleted too
    });
    const stop = new AbortController();
    const running = ingest.start(stop.signal);
    await until(() => q.deleted.flat().length === 2);
    stop.abort();
    await running;
    expect(q.deleted.flat().sort()).toEqual(['h1', 'h3']);
  });

  it('deletes a stored message without waiting for the slower creates of its receive', async () => {
    const q = fakeQueue([[msg(1), msg(2)]]);
    let slow: (() => void) | undefined;
    const ingest = ingestWith(q.queue, (ej) =>
      ej.spec.linesKey === 'r/2/lines.ndjson'
        ? new Promise((r) => (slow = () => r({ created: true })))
        : Promise.resolve({ created: true }),
    );
    const stop = new AbortController();
    const running = ingest.start(stop.signal);
    await until(() => q.deleted.flat().includes('h1'));
    expect(q.deleted.flat()).not.toContain('h2');
    stop.abort();
    slow!();
    await running;
    expect(q.deleted.flat().sort()).toEqual(['h1', 'h2']);
  });

  it('caps receives in flight per poller', async () => {
    const q = fakeQueue(Array.from({ length: 10 }, (_, i) => [msg(10 + i)]));
    const release: (() => void)[] = [];
    const ingest = ingestWith(q.queue, () => new Promise((r) => release.push(() => r({ created: true }))));
    const stop = new AbortController();
    const running = ingest.start(stop.signal);
    await until(() => release.length === 4);
    await new Promise((r) => setTimeout(r, 100));
    expect(release.length).toBe(4);
    release.shift()!();
    await until(() => release.length === 4 && q.receives() >= 5);
    stop.abort();
    for (const r of release) r();
    await running;
  });

  it('dead-letters a message naming another bucket, an ARN or an escaping key, with the field in the reason', async () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [
        { artifacts_bucket: 'other-bucket' },
        /field artifacts_bucket: bucket "other-bucket" is not an allowed/,
      ],
      [
        { artifacts_bucket: 'arn:aws:s3:us-east-1:999999999999:accesspoint/attacker' },
        /field artifacts_bucket: .*plain DNS-style bucket name/,
      ],
      [
        { artifacts_bucket: 'arn:aws:s3-object-lambda:us-east-1:999999999999:accesspoint/x' },
        /field artifacts_bucket/,
      ],
      [{ artifacts_bucket: 'Artifacts' }, /field artifacts_bucket/],
      [{ lines_key: 'r/../../other-bucket/secret' }, /field lines_key: .*"\.\." segments/],
      [{ words_key: '/etc/passwd' }, /field words_key/],
      [{ words_key: '' }, /field words_key/],
      [{ lines_key: 'k'.repeat(1025) }, /field lines_key: object key is longer than 1024 bytes/],
      [{ lines_key: 'é'.repeat(600) }, /field lines_key: object key is longer than 1024 bytes/], // 1200 bytes
    ];
    const q = fakeQueue([
      [...bad.map(([over], i) => msg(100 + i, over)), msg(200, { artifacts_bucket: 'artifacts-eu' })],
    ]);
    const created: string[] = [];
    const ingest = ingestWith(q.queue, async (ej) => {
      created.push(ej.spec.artifactsBucket);
      return { created: true };
    });
    const stop = new AbortController();
    const running = ingest.start(stop.signal);
    await until(() => q.deadLettered.length === bad.length && q.deleted.flat().length === 1);
    stop.abort();
    await running;
    expect(created).toEqual(['artifacts-eu']); // the allowlisted second bucket passes
    bad.forEach(([, reason], i) => {
      const got = q.deadLettered.find((d) => d.id === `m${100 + i}`);
      expect(got?.reason, JSON.stringify(bad[i]![0]).slice(0, 80)).toMatch(/^InvalidMessage: /);
      expect(got?.reason).toMatch(reason);
    });
  });
});
