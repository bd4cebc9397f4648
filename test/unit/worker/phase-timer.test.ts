import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { PhaseTimer } from '../../../worker/phase-timer.js';

describe('PhaseTimer', () => {
  it('sums a phase over overlapping runs and spans it from the first start to the last end', async () => {
    const timer = new PhaseTimer(performance.now());
    await Promise.all([timer.timed('embed', () => sleep(30)), timer.timed('embed', () => sleep(30))]);
    const { phaseMs, phaseSpanMs } = timer.figures();
    expect(phaseMs.embed).toBeGreaterThanOrEqual(58);
    const [from, to] = phaseSpanMs.embed!;
    expect(from).toBeLessThan(5);
    expect(to - from).toBeGreaterThanOrEqual(29);
    expect(to - from).toBeLessThan(phaseMs.embed!);
  });

  it('counts a step that fails, and rethrows its error', async () => {
    const timer = new PhaseTimer(performance.now());
    const failing = timer.timed('read', async () => {
      await sleep(10);
      throw new Error('bad row');
    });
    await expect(failing).rejects.toThrow('bad row');
    expect(timer.figures().phaseMs.read).toBeGreaterThanOrEqual(9);
  });

  it('counts the wait for a gate, not the work behind it', async () => {
    const timer = new PhaseTimer(performance.now());
    // One slot: the second caller waits for the first one's work.
    let tail: Promise<unknown> = Promise.resolve();
    const gate = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = tail.then(fn);
      tail = run.catch(() => undefined);
      return run;
    };
    const work = () => timer.timed('upload', () => sleep(30));
    await Promise.all([timer.gated('writeWait', gate, work), timer.gated('writeWait', gate, work)]);
    const { writeWait, upload } = timer.figures().phaseMs;
    expect(writeWait).toBeGreaterThanOrEqual(28);
    expect(writeWait).toBeLessThan(upload!);
  });
});
