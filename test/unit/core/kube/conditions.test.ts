// metav1.Condition rules (core/kube/conditions.ts): lastTransitionTime moves only when the status flips, and every
// write stamps the generation it was computed from.
import { describe, expect, it } from 'vitest';
import type { Condition } from '../../../../core/contracts/embedding-job.js';
import { findCondition, removeCondition, setCondition } from '../../../../core/kube/conditions.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T00:05:00Z');
const ready = (status: Condition['status'], reason = 'Ready', gen = 1): Condition[] =>
  setCondition(undefined, { type: 'Ready', status, reason }, gen, T0);

describe('setCondition', () => {
  it('adds a missing condition with the time given, an empty message by default and the generation', () => {
    expect(setCondition([], { type: 'Ready', status: 'False', reason: 'Pending' }, 3, T0)).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pending',
        message: '',
        lastTransitionTime: T0.toISOString(),
        observedGeneration: 3,
      },
    ]);
  });

  it.each([
    { change: 'reason and message only', status: 'True' as const, kept: true },
    { change: 'status True → False', status: 'False' as const, kept: false },
    { change: 'status True → Unknown', status: 'Unknown' as const, kept: false },
  ])('$change: lastTransitionTime kept = $kept; reason, message and generation always updated', (row) => {
    const next = setCondition(
      ready('True'),
      { type: 'Ready', status: row.status, reason: 'Other', message: 'why' },
      2,
      T1,
    );
    expect(next).toEqual([
      {
        type: 'Ready',
        status: row.status,
        reason: 'Other',
        message: 'why',
        lastTransitionTime: (row.kept ? T0 : T1).toISOString(),
        observedGeneration: 2,
      },
    ]);
  });

  it('leaves observedGeneration out when the generation is unknown', () => {
    const [c] = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ready' }, undefined, T0);
    expect(c).not.toHaveProperty('observedGeneration');
  });

  it('replaces in place, keeps the other conditions and does not mutate its input', () => {
    const before = setCondition(
      ready('True'),
      { type: 'Compacted', status: 'False', reason: 'Pending' },
      1,
      T0,
    );
    const frozen = structuredClone(before);
    const after = setCondition(before, { type: 'Ready', status: 'False', reason: 'Failed' }, 2, T1);
    expect(before).toEqual(frozen);
    expect(after.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'False'],
      ['Compacted', 'False'],
    ]);
  });
});

describe('findCondition / removeCondition', () => {
  it('find by type; remove only that type; both accept undefined', () => {
    const list = setCondition(ready('True'), { type: 'Compacted', status: 'True', reason: 'Done' }, 1, T0);
    expect(findCondition(list, 'Compacted')?.reason).toBe('Done');
    expect(findCondition(undefined, 'Ready')).toBeUndefined();
    expect(removeCondition(list, 'Ready').map((c) => c.type)).toEqual(['Compacted']);
    expect(removeCondition(undefined, 'Ready')).toEqual([]);
  });
});
