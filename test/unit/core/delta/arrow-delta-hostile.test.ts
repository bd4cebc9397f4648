import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeDelta, deltaFile, encodeDelta } from '../../../../core/delta/arrow-delta.js';
import { ObjectTooLargeError, PipelineError } from '../../../../core/errors.js';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';

/**
 * A delta as a hostile writer could make it: any declared dimensions/rows, any list size, raw metadata strings.
 * (deltaFile is encodeDelta's layout without its checks.)
 */
function hostileDelta(o: {
  declaredDims: string;
  listSize: number;
  rows?: string;
  metadata?: string[];
}): Uint8Array {
  const n = o.metadata?.length ?? 2;
  const ids = Array.from({ length: n }, (_, i) => `id-${i}`);
  return deltaFile({
    listSize: o.listSize,
    flat: new Float32Array(n * o.listSize).fill(0.5),
    ids,
    documents: ids,
    metadata: o.metadata ?? ids.map(() => '{}'),
    header: {
      collection: 'lines',
      runId: 'r',
      dimensions: o.declaredDims,
      model: 'm',
      rows: o.rows ?? String(n),
    },
  });
}

function corrupt(bytes: Uint8Array): PipelineError {
  try {
    decodeDelta(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).reason).toBe('DeltaCorrupt');
    return err as PipelineError;
  }
  throw new Error('decoded');
}

describe('Arrow delta from a hostile writer (issue 18 item 10)', () => {
  it('a declared dimension of 3e9 is refused before anything that size is allocated', () => {
    const t0 = performance.now();
    const err = corrupt(hostileDelta({ declaredDims: '3000000000', listSize: 8 }));
    expect(err.message).toMatch(/dimensions "3000000000", not an integer in \[1, 16384\]/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it.each([['-1'], ['abc'], ['0'], ['1.5'], ['']])(
    'declared dimensions %j is DeltaCorrupt, never a bare RangeError',
    (d) => {
      expect(corrupt(hostileDelta({ declaredDims: d, listSize: 8 })).message).toMatch(/not an integer in/);
    },
  );

  it('declared dimensions that differ from the list size are refused', () => {
    expect(corrupt(hostileDelta({ declaredDims: '4', listSize: 8 })).message).toMatch(
      /not a fixed-size list of 4/,
    );
    expect(corrupt(hostileDelta({ declaredDims: '16', listSize: 8 })).message).toMatch(
      /not a fixed-size list of 16/,
    );
  });

  it('a declared row count that is not a count, and metadata that is not JSON, are DeltaCorrupt', () => {
    expect(corrupt(hostileDelta({ declaredDims: '8', listSize: 8, rows: '-1' })).message).toMatch(
      /not a count/,
    );
    expect(
      corrupt(hostileDelta({ declaredDims: '8', listSize: 8, metadata: ['{}', '{not json'] })).message,
    ).toMatch(/row 2: metadata is not JSON/);
  });

  it('a well-formed delta still decodes', () => {
    const { bytes, sha256 } = encodeDelta({ collection: 'lines', runId: 'r', dimensions: 8, model: 'm' }, [
      { id: 'a', document: 'd', metadata: { x: 1 }, embedding: new Float32Array(8).fill(1) },
    ]);
    expect(decodeDelta(bytes, sha256).records).toHaveLength(1);
    expect(decodeDelta(hostileDelta({ declaredDims: '8', listSize: 8 })).records).toHaveLength(2);
  });

  it('an object over its reader limit is refused from its size, before its body is read', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    mkdirSync(join(root, 'vectors', 'lines', 'delta', 'r'), { recursive: true });
    writeFileSync(join(root, 'vectors', 'lines', 'delta', 'r', 'delta.arrow'), Buffer.alloc(4096));
    const store = new DirectoryObjectStore(root);
    await expect(store.getBuffer('vectors', 'lines/delta/r/delta.arrow', { maxBytes: 4095 })).rejects.toThrow(
      ObjectTooLargeError,
    );
    await expect(store.getStream('vectors', 'lines/delta/r/delta.arrow', { maxBytes: 100 })).rejects.toThrow(
      /is 4096 bytes, over the limit of 100/,
    );
    expect((await store.getBuffer('vectors', 'lines/delta/r/delta.arrow', { maxBytes: 4096 })).length).toBe(
      4096,
    );
  });
});
