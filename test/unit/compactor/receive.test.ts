import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Queue, QueueMessage, ReceiveOptions } from '../../../core/ports/queue.js';
import { receiveBatch } from '../../../compactor/receive.js';

const log = pino({ level: 'silent' });
const msgs = (n: number, from = 0): QueueMessage[] =>
  Array.from({ length: n }, (_, i) => ({
    id: `m${from + i}`,
    handle: `h${from + i}`,
    body: '{}',
    receiveCount: 1,
    attributes: {},
  }));

/** A queue answering each receive with the next scripted reply (an empty one when the script runs out). */
function scripted(replies: (number | 'throttled')[]) {
  const calls: ReceiveOptions[] = [];
  let sent = 0;
  const queue = {
    receive: (o: ReceiveOptions) => {
      calls.push(o);
      const r = replies.shift() ?? 0;
      if (r === 'throttled') return Promise.reject(new Error('throttled'));
      const out = msgs(Math.min(r, o.maxMessages ?? 10), sent);
      sent += out.length;
      return Promise.resolve(out);
    },
  } as unknown as Queue;
  return { queue, calls };
}

const opts = { waitSeconds: 20, windowMs: 200, batchSize: 25, visibilitySeconds: 60 };

describe('receiving a batch: one long poll, then more for up to the batch window', () => {
  it.each<{
    name: string;
    replies: (number | 'throttled')[];
    batchSize?: number;
    got: number;
    calls: number;
  }>([
    { name: 'nothing on the long poll: no window', replies: [0], got: 0, calls: 1 },
    {
      name: 'filled up to batchSize, the last receive asking only for what is missing',
      replies: [10, 10, 10],
      got: 25,
      calls: 3,
    },
    {
      name: 'a throttled fill-up receive ends the window with what is held',
      replies: [10, 3, 'throttled', 10],
      got: 13,
      calls: 3,
    },
    {
      name: 'a full first receive is not filled further',
      replies: [1, 10],
      batchSize: 1,
      got: 1,
      calls: 1,
    },
  ])('$name', async ({ replies, batchSize, got, calls }) => {
    const q = scripted(replies);
    const out = await receiveBatch(
      q.queue,
      { ...opts, ...(batchSize ? { batchSize } : {}) },
      new AbortController().signal,
      log,
    );
    expect(out).toHaveLength(got);
    expect(new Set(out.map((m) => m.id)).size).toBe(got);
    expect(q.calls).toHaveLength(calls);
  });

  it('the long poll waits, the fill-ups do not; every receive hides its messages for the visibility timeout', async () => {
    const q = scripted([10, 10, 10]);
    await receiveBatch(q.queue, opts, new AbortController().signal, log);
    expect(q.calls.map((c) => [c.maxMessages, c.waitSeconds, c.visibilitySeconds])).toEqual([
      [10, 20, 60],
      [10, 0, 60],
      [5, 0, 60],
    ]);
  });

  it('an empty fill-up waits a little and tries again until the window closes', async () => {
    const q = scripted([2]); // then empty forever
    const t0 = Date.now();
    const out = await receiveBatch(q.queue, { ...opts, windowMs: 300 }, new AbortController().signal, log);
    expect(out).toHaveLength(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // Every ~100 ms: about three fill-ups in 300 ms, not a busy loop.
    expect(q.calls.length).toBeGreaterThanOrEqual(3);
    expect(q.calls.length).toBeLessThanOrEqual(6);
  });

  it('an abort ends the window at once', async () => {
    const q = scripted([2]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = Date.now();
    expect(await receiveBatch(q.queue, { ...opts, windowMs: 5000 }, ac.signal, log)).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
