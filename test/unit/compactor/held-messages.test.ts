import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Queue, QueueMessage } from '../../../core/ports/queue.js';
import { HeldMessages } from '../../../compactor/held-messages.js';

const msg = (id: string): QueueMessage => ({
  id,
  handle: `h-${id}`,
  body: '{}',
  receiveCount: 1,
  attributes: {},
});

function fakeQueue() {
  const extended: [string, number][] = [];
  const queue = {
    changeVisibility: (handle: string, seconds: number) => {
      extended.push([handle, seconds]);
      return Promise.resolve();
    },
  } as unknown as Queue;
  return { queue, extended };
}

describe('the visibility heartbeat of held messages', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('extends every held message each half visibility timeout, until it is released', () => {
    const { queue, extended } = fakeQueue();
    const held = new HeldMessages(
      () => queue,
      60,
      () => false,
    );
    held.hold([msg('a'), msg('b')]);
    vi.advanceTimersByTime(29_999);
    expect(extended).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(extended).toEqual([
      ['h-a', 60],
      ['h-b', 60],
    ]);
    held.release([msg('a')]);
    expect(held.has(msg('a'))).toBe(false);
    expect(held.has(msg('b'))).toBe(true);
    extended.length = 0;
    vi.advanceTimersByTime(30_000);
    expect(extended).toEqual([['h-b', 60]]);
    held.stop();
    extended.length = 0;
    vi.advanceTimersByTime(60_000);
    expect(extended).toEqual([]);
  });

  it('one heartbeat for all batches held; at least every second for short timeouts', () => {
    const { queue, extended } = fakeQueue();
    const held = new HeldMessages(
      () => queue,
      1,
      () => false,
    );
    held.hold([msg('a')]);
    held.hold([msg('b')]);
    vi.advanceTimersByTime(1000);
    expect(extended.map(([h]) => h)).toEqual(['h-a', 'h-b']);
    held.stop();
  });

  it('a stalled lane stops extending, so its messages return to the queue', () => {
    const { queue, extended } = fakeQueue();
    let stalled = false;
    const held = new HeldMessages(
      () => queue,
      60,
      () => stalled,
    );
    held.hold([msg('a')]);
    stalled = true;
    vi.advanceTimersByTime(90_000);
    expect(extended).toEqual([]);
    stalled = false; // the batch moved again
    vi.advanceTimersByTime(30_000);
    expect(extended).toEqual([['h-a', 60]]);
    held.stop();
  });

  it('a failed extension is ignored (the next beat tries again)', async () => {
    let calls = 0;
    const queue = {
      changeVisibility: () => {
        calls++;
        return Promise.reject(new Error('throttled'));
      },
    } as unknown as Queue;
    const held = new HeldMessages(
      () => queue,
      60,
      () => false,
    );
    held.hold([msg('a')]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(2);
    held.stop();
  });
});
