// The human summary of `local run` (issue 12, items 10 and 11): stages named as a user thinks of the pipeline, in its
// order (the JSON keeps the internal names), and a Receipts line that counts what was rejected and what was skipped.
import { describe, expect, it } from 'vitest';
import { formatSummary, STAGE_LABELS } from '../../../cli/run-summary-text.js';
import type { RunSummary } from '../../../local/run.js';

function summary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    home: '/tmp/h',
    embedder: { model: 'local-hash-v1', dimensions: 1536, kind: 'lexical' },
    submitted: 0,
    skipped: { done: 20, queued: 0 },
    receipts: { total: 20, succeeded: 20, failed: 0 },
    vectors: { lines: { snapshot: 3, expected: 3 }, words: { snapshot: 9, expected: 9 } },
    merchants: { resolved: 0, unresolved: 20, byName: {} },
    failures: [],
    deadLetters: [],
    snapshot: {},
    // In the order the runner records them, which is not the pipeline's.
    stages: {
      childBuild: { wallMs: 70 },
      ingest: { wallMs: 100 },
      workers: { wallMs: 3290, busyMs: 2100 },
      embedding: { wallMs: 800, busyMs: 900 },
      compactWait: { wallMs: 1200 },
      stream: { wallMs: 4000 },
      submit: { wallMs: 70 },
      compactor: { wallMs: 5000, busyMs: 3000 },
      chromaWrites: { wallMs: 2000, busyMs: 2500 },
      publish: { wallMs: 600, busyMs: 600 },
      summary: { wallMs: 300 },
    },
    workers: { launched: 0, failed: 0 },
    compactor: { restarts: 0 },
    queries: [],
    overhead: { workMs: 1000, share: 0.5 },
    totalMs: 7540,
    complete: true,
    ...over,
  };
}

describe('local run summary', () => {
  it('names every stage as a user thinks of the pipeline, in pipeline order, never by its internal name', () => {
    const text = formatSummary(summary());
    const section = text.slice(text.indexOf('Time per stage'));
    for (const internal of ['childBuild', 'compactWait', 'chromaWrites'])
      expect(text).not.toContain(internal);
    const shown = section
      .split('\n')
      .slice(1)
      .filter((l) => /\d\.\d\d s/.test(l) && !l.includes('overhead') && !l.includes('in progress'))
      .map((l) => l.replace(/\s+[\d.]+ s.*$/, '').trim());
    for (const internal of Object.keys(summary().stages)) expect(shown).not.toContain(internal);
    expect(shown).toEqual(Object.values(STAGE_LABELS).map((l) => l.trim()));
    expect(section).toMatch(/^ {2}reading and uploading receipts\s+0\.07 s$/m);
    expect(section).toMatch(/^ {2}waiting for the index to catch up\s+1\.20 s$/m);
  });

  it('says how many receipts are new and how many were already done; a compactor restart is shown', () => {
    expect(formatSummary(summary())).toContain(
      'Receipts: 20 (20 embedded, 0 failed; 0 new, 20 already done)',
    );
    const text = formatSummary(
      summary({
        submitted: 2,
        skipped: { done: 3, queued: 1 },
        receipts: { total: 8, succeeded: 5, failed: 3 },
        compactor: { restarts: 1, lastExit: 'killed by SIGKILL' },
      }),
    );
    expect(text).toContain('Receipts: 8 (5 embedded, 3 failed; 2 new, 3 already done, 1 already queued)');
    expect(text).toContain('Compactor: restarted 1 time(s); last exit: killed by SIGKILL');
  });
});

// Audit 5.8 / issue 18 item 12: names and messages come from the input; the terminal must not obey them.
describe('formatSummary escapes control characters', () => {
  it('in merchant names, failures, dead letters, compactor exits and query hits', () => {
    const evil = '\u001b[2J\u001b]0;owned\u0007\u001b[31mRED\u202e';
    const text = formatSummary(
      summary({
        merchants: { resolved: 1, unresolved: 0, byName: { [evil]: 1 } },
        failures: [{ source: `dir${evil}`, reason: 'BadInput', message: `Unexpected token '${evil}'` }],
        deadLetters: [{ queue: 'EMBED', reason: evil, body: '{}' }],
        compactor: { restarts: 1, lastExit: `exit code 1: ${evil}` },
        queries: [
          {
            title: evil,
            collection: 'lines',
            hits: [{ id: evil, similarity: 1, text: 'x', merchant: evil }],
          },
        ],
      }),
    );
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/);
    expect(text).toContain('\\u001b[31mRED\\u202e ×1');
    expect(text).toContain('✗ dir\\u001b[2J');
  });
});
