import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { CrashRecord } from '../../../compactor/crash-record.js';
import { isolate } from '../../../compactor/isolation.js';
import { groupByBytes, type RunRow } from '../../../compactor/load-runs.js';
import { Progress } from '../../../compactor/progress.js';
import type { QueueMessage } from '../../../core/ports/queue.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const msg = (id: string): QueueMessage => ({
  id,
  handle: `h-${id}`,
  body: '{}',
  receiveCount: 1,
  attributes: {},
});
const ids = (n: number) => Array.from({ length: n }, (_, i) => msg(`m${i}`));

describe('crash-looping messages are isolated, then dead-lettered', () => {
  it('charges a death to every message left in flight, "alone" only when it was alone; a clean end forgets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crash-record-'));
    dirs.push(dir);
    const path = join(dir, 'lines', 'inflight.json');
    const batch = ids(3);
    const first = new CrashRecord(path, log);
    expect(await first.open()).toEqual([]);
    await first.begin(batch, false); // …and the process dies here
    const second = new CrashRecord(path, log);
    expect((await second.open()).sort()).toEqual(['m0', 'm1', 'm2']);
    expect(second.deaths('m1')).toMatchObject({ deaths: 1, alone: 0 });
    await second.begin([batch[1]!], false); // m1 by itself, but the other lane was busy: not "alone"
    const between = new CrashRecord(path, log);
    expect(await between.open()).toEqual(['m1']);
    expect(between.deaths('m1')).toMatchObject({ deaths: 2, alone: 0 });
    await between.begin([batch[1]!], true); // m1 alone in the process, dies again
    const third = new CrashRecord(path, log);
    expect(await third.open()).toEqual(['m1']);
    expect(third.deaths('m1')).toMatchObject({ deaths: 3, alone: 1 });
    await third.begin([batch[0]!], false);
    await third.end([batch[0]!]); // m0 committed: forgotten; nothing in flight
    const fourth = new CrashRecord(path, log);
    expect(await fourth.open()).toEqual([]);
    expect(fourth.deaths('m0')).toBeUndefined();
    expect(fourth.deaths('m1')).toMatchObject({ deaths: 3, alone: 1 });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ inflight: [] });
  });

  it('an unreadable record starts afresh instead of failing the start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crash-record-'));
    dirs.push(dir);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'inflight.json'), '{ torn');
    const r = new CrashRecord(join(dir, 'inflight.json'), log);
    expect(await r.open()).toEqual([]);
  });

  it('groups: clean ones together, once-suspects by √batchSize, repeat suspects alone, crash-loopers out', () => {
    const msgs = ids(80);
    const deaths = new Map<string, { deaths: number; alone: number; since: string }>();
    const since = new Date().toISOString();
    for (let i = 10; i < 60; i++) deaths.set(`m${i}`, { deaths: 1, alone: 0, since });
    deaths.set('m60', { deaths: 2, alone: 0, since });
    deaths.set('m61', { deaths: 3, alone: 1, since });
    deaths.set('m62', { deaths: 4, alone: 2, since });
    const { crashLooping, groups } = isolate(msgs, (id) => deaths.get(id), {
      batchSize: 1000,
      crashLimit: 2,
    });
    expect(crashLooping.map((c) => c.m.id)).toEqual(['m62']);
    const sizes = groups.map((g) => `${g.msgs.length}${g.exclusive ? '!' : ''}`);
    expect(sizes).toEqual(['27', '32', '18', '1!', '1!']); // 10 + 17 clean; 50 once-suspects; m60, m61 alone
    expect(groups[0]!.msgs.map((m) => m.id)).not.toContain('m10');
    expect(groups.flatMap((g) => g.msgs)).toHaveLength(79);
  });

  it('a culprit among 1,000 is dead-lettered after 2 + crashLimit deaths; no innocent one ever is', () => {
    const msgs = ids(1000);
    const culprit = 'm617';
    const deaths = new Map<string, { deaths: number; alone: number; since: string }>();
    let crashes = 0;
    const since = new Date().toISOString();
    for (let round = 0; round < 20; round++) {
      const { crashLooping, groups } = isolate(msgs, (id) => deaths.get(id), {
        batchSize: 1000,
        crashLimit: 2,
      });
      if (crashLooping.length) {
        expect(crashLooping.map((c) => c.m.id)).toEqual([culprit]);
        break;
      }
      // Groups run in order; the one holding the culprit kills the process, charging each of its messages.
      const fatal = groups.find((g) => g.msgs.some((m) => m.id === culprit))!;
      crashes++;
      for (const m of fatal.msgs) {
        const d = deaths.get(m.id) ?? { deaths: 0, alone: 0, since };
        d.deaths++;
        if (fatal.msgs.length === 1 && fatal.exclusive) d.alone++;
        deaths.set(m.id, d);
      }
    }
    expect(crashes).toBe(4);
  });
});

describe('batches are loaded in groups bounded by bytes', () => {
  const row = (vectors: number, dimensions?: number) =>
    ({ rc: { vectors }, item: dimensions ? { dimensions } : {} }) as unknown as RunRow;

  it('consecutive groups below the bound; a run larger than the bound is a group of its own', () => {
    // 1536 dims: (1536 × 4 + 512) B per vector = 6,656 B; 200 vectors ≈ 1.33 MB.
    const rows = [row(200), row(200), row(200), row(2000), row(10)];
    const groups = groupByBytes(rows, 3_000_000, 1536);
    expect(groups.map((g) => g.length)).toEqual([2, 1, 1, 1]);
    expect(groupByBytes(rows, Infinity, 1536)).toHaveLength(1);
    expect(groupByBytes([], 1, 1536)).toEqual([]);
  });

  it("a run's own dimensions count over the collection's", () => {
    expect(groupByBytes([row(100, 16), row(100, 16)], 20 * 576, 1536).map((g) => g.length)).toEqual([1, 1]);
    expect(groupByBytes([row(100, 16), row(100, 16)], 200 * 576, 1536).map((g) => g.length)).toEqual([2]);
  });
});

describe('lane permits (async-mutex Semaphore(2))', () => {
  it("an exclusive attempt waits for the other lane's batch and holds off new ones until it ends", async () => {
    const { Semaphore } = await import('async-mutex');
    const permits = new Semaphore(2);
    const events: string[] = [];
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const words = permits.runExclusive(async () => {
      events.push('words batch 1 starts');
      await wait(50);
      events.push('words batch 1 ends');
    }, 1);
    await wait(5);
    const suspect = permits.runExclusive(async () => {
      events.push('lines suspect starts');
      await wait(30);
      events.push('lines suspect ends');
    }, 2);
    await wait(5);
    const words2 = permits.runExclusive(async () => void events.push('words batch 2 starts'), 1);
    await Promise.all([words, suspect, words2]);
    expect(events).toEqual([
      'words batch 1 starts',
      'words batch 1 ends',
      'lines suspect starts',
      'lines suspect ends',
      'words batch 2 starts',
    ]);
  });
});

describe('lane progress', () => {
  it('stalls only while a batch is in progress and has not ticked', () => {
    let now = 1000;
    const p = new Progress(() => now);
    now += 50_000;
    expect(p.stalledMs()).toBe(0); // idle is not stalled
    p.begin();
    now += 400;
    expect(p.stalledMs()).toBe(400);
    p.tick();
    now += 100;
    expect(p.stalledMs()).toBe(100);
    p.end();
    now += 10_000;
    expect(p.stalledMs()).toBe(0);
  });
});
