import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../../core/local/sqlite.js';
import { SqliteQueue, StaleHandleError } from '../../../../core/local/sqlite-queue.js';

let dir: string;
let t: number;
const now = () => t;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-queue-'));
  t = 1_000_000;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const open = (name = 'EMBED', maxReceiveCount = 3) =>
  SqliteQueue.open(join(dir, 'q.sqlite'), name, { visibilitySeconds: 30, maxReceiveCount, now });

describe('SqliteQueue', () => {
  it('delivers in send order with attributes, hides received messages until the visibility timeout', async () => {
    const q = open();
    await q.send([{ body: 'a', attributes: { k: 'v' } }, { body: 'b' }, { body: 'c' }]);
    expect(await q.depth()).toEqual({ visible: 3, inFlight: 0 });
    const first = await q.receive({ maxMessages: 2 });
    expect(first.map((m) => m.body)).toEqual(['a', 'b']);
    expect(first[0]).toMatchObject({ attributes: { k: 'v' }, receiveCount: 1, sentAt: 1_000_000 });
    expect(await q.depth()).toEqual({ visible: 1, inFlight: 2 });
    expect((await q.receive()).map((m) => m.body)).toEqual(['c']);
    expect(await q.receive()).toEqual([]);
    t += 30_000;
    const again = await q.receive();
    expect(again.map((m) => [m.body, m.receiveCount])).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 2],
    ]);
    expect(again[0]!.handle).not.toBe(first[0]!.handle);
  });

  it('deletes by current handle only; a stale handle deletes nothing (SQS semantics)', async () => {
    const q = open();
    await q.send([{ body: 'a' }]);
    const [d1] = await q.receive({ visibilitySeconds: 5 });
    t += 5_000;
    const [d2] = await q.receive();
    await q.delete(d1!.handle);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 1 });
    await expect(q.changeVisibility(d1!.handle, 60)).rejects.toBeInstanceOf(StaleHandleError);
    await q.delete(d2!.handle);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0 });
  });

  it('changeVisibility extends or ends the invisibility of the current delivery', async () => {
    const q = open();
    await q.send([{ body: 'a' }]);
    const [m] = await q.receive();
    await q.changeVisibility(m!.handle, 120);
    t += 60_000;
    expect(await q.receive()).toEqual([]);
    await q.changeVisibility(m!.handle, 0);
    expect((await q.receive()).map((x) => x.body)).toEqual(['a']);
  });

  it('dead-letters explicitly with a reason, and after maxReceiveCount deliveries by redrive policy', async () => {
    const q = open('EMBED', 2);
    await q.send([{ body: 'bad' }, { body: 'poison', attributes: { a: '1' } }]);
    const [bad, poison] = await q.receive();
    await q.deadLetter(bad!, 'InvalidMessage: image_id must be a UUID');
    t += 30_000;
    expect((await q.receive()).map((m) => m.body)).toEqual(['poison']);
    t += 30_000;
    expect(await q.receive()).toEqual([]);
    expect(await q.depth()).toEqual({ visible: 0, inFlight: 0 });
    const dl = q.deadLetters();
    expect(dl.map((d) => [d.body, d.receiveCount])).toEqual([
      ['bad', 1],
      ['poison', 2],
    ]);
    expect(dl[0]!.reason).toBe('InvalidMessage: image_id must be a UUID');
    expect(dl[1]!.reason).toMatch(/maxReceiveCount 2 exceeded/);
    expect(dl[1]!.attributes).toMatchObject({
      a: '1',
      dlq_source_queue: 'EMBED',
      dlq_original_message_id: poison!.id,
    });
    // A stale delivery cannot dead-letter (nor duplicate) anything.
    await q.deadLetter(poison!, 'again');
    expect(q.deadLetters()).toHaveLength(2);
    expect(q.redrive([poison!.id])).toBe(1);
    const [back] = await q.receive();
    expect(back).toMatchObject({ body: 'poison', receiveCount: 1, attributes: { a: '1' } });
  });

  it('keeps queues apart in one file and survives reopening (durable)', async () => {
    const a = open('LINES');
    const b = open('WORDS');
    await a.send([{ body: 'l' }]);
    await b.send([{ body: 'w' }]);
    a.db.close();
    const reopened = open('LINES');
    expect((await reopened.receive()).map((m) => m.body)).toEqual(['l']);
    expect((await b.receive()).map((m) => m.body)).toEqual(['w']);
  });

  it('long-polls until a message arrives and returns empty when aborted', async () => {
    const q = SqliteQueue.open(join(dir, 'q.sqlite'), 'EMBED', { pollMs: 10 });
    setTimeout(() => void q.send([{ body: 'late' }]), 50);
    expect((await q.receive({ waitSeconds: 5 })).map((m) => m.body)).toEqual(['late']);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    expect(await q.receive({ waitSeconds: 5, signal: ac.signal })).toEqual([]);
  });

  it('never hands one delivery to two concurrent receivers sharing the file', async () => {
    const path = join(dir, 'q.sqlite');
    const q1 = new SqliteQueue(openDatabase(path), 'EMBED');
    const q2 = new SqliteQueue(openDatabase(path), 'EMBED');
    await q1.send(Array.from({ length: 50 }, (_, i) => ({ body: String(i) })));
    const seen: string[] = [];
    await Promise.all(
      [q1, q2].map(async (q) => {
        for (;;) {
          const got = await q.receive({ maxMessages: 3 });
          if (got.length === 0) return;
          seen.push(...got.map((m) => m.body));
        }
      }),
    );
    expect(seen.sort((x, y) => Number(x) - Number(y))).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
  });
});
