import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import {
  crashLoopReason,
  DLQ_REASON_KINDS,
  reasonKind,
  repeatedFailure,
} from '../../../compactor/give-up.js';
import { CompactorMetrics } from '../../../compactor/metrics.js';

describe('CompactorMetrics.initCollection', () => {
  it("puts a lane's counters at 0 (merged, runs, DLQ by reason, publishes, S3 snapshots), so increase() and the dashboard see them before the first event", async () => {
    const registry = new Registry();
    new CompactorMetrics(registry).initCollection('lines');
    const lines = (await registry.metrics()).split('\n');
    for (const line of [
      'embedctl_compactor_merged_vectors_total{collection="lines",how="added"} 0',
      'embedctl_compactor_runs_total{collection="lines",state="FAILED"} 0',
      'embedctl_dlq_messages_total{queue="lines",reason="InvalidMessage"} 0',
      'embedctl_dlq_messages_total{queue="lines",reason="CrashLoop"} 0',
      'embedctl_dlq_messages_total{queue="lines",reason="RepeatedFailure"} 0',
      'embedctl_compactor_publishes_total{collection="lines"} 0',
      'embedctl_compactor_s3_snapshots_total{collection="lines"} 0',
    ])
      expect(lines).toContain(line);
    expect(lines.some((l) => l.includes('"words"'))).toBe(false);
  });

  it('the DLQ reason kinds it initializes are the ones the give-up reasons carry', () => {
    expect(DLQ_REASON_KINDS).toContain(reasonKind(crashLoopReason({ deaths: 3, alone: 2 })));
    expect(DLQ_REASON_KINDS).toContain(reasonKind(repeatedFailure({ receiveCount: 5 }, 5, 'x')!));
    expect(DLQ_REASON_KINDS).toContain(reasonKind('InvalidMessage: body is not JSON'));
  });
});
