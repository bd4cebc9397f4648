// A batch whose publish fails transiently has its messages rescheduled with backoff (compactor/lane.ts `failed`);
// a compactor told to exit when idle waits for them to come back and commits them, instead of leaving its runs
// PENDING for the next start (the cause of a flaky bootstrap test: the retry was due after the idle exit).
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { TransientError } from '../../../core/errors.js';
import { makeReceipt, makeWorld, pumpStream, withLane, writeRun } from './fixtures.js';

const env = inject('testEnv');

describe('idle exit after a transient failure', () => {
  it('waits for the rescheduled messages and commits them before exiting', async () => {
    const w = await makeWorld(env, 'retry-idle');
    const run = await writeRun(w, makeReceipt(700));
    await pumpStream(w);
    await withLane(w, 'lines', { exitWhenIdleMs: 300, waitSeconds: 0 }, async (lane, signal) => {
      const publish = lane.publish.bind(lane);
      let failures = 0;
      lane.publish = async (ids) => {
        if (failures++ === 0) throw new TransientError('simulated: a file changed while it was copied');
        return publish(ids);
      };
      const started = Date.now();
      await lane.loop(signal);
      expect(failures).toBe(2);
      // The retry was due ≥ 1.6 s after the failure (backoff of the first receive), well past the 300-ms idle limit.
      expect(Date.now() - started).toBeGreaterThan(1500);
    });
    const got = await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id);
    expect(runCollection(got!, 'lines')?.state).toBe('COMPLETED');
  });
});
