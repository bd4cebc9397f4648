import { describe, expect, it } from 'vitest';
import { decodeDelta, encodeDelta } from '../../../../core/delta/arrow-delta.js';
import type { VectorRecord } from '../../../../core/ports/vector-store.js';

const records: VectorRecord[] = Array.from({ length: 7 }, (_, i) => ({
  id: `IMAGE#x#RECEIPT#00001#LINE#${String(i).padStart(5, '0')}`,
  document: `row ${i} — ünïcode`,
  metadata: { receipt_id: 1, line_id: i, text: `row ${i}`, ok: i % 2 === 0, score: i / 3 },
  embedding: Float32Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)),
}));

describe('Arrow delta', () => {
  it('round-trips ids, documents, metadata, vectors and header', () => {
    const { bytes, sha256 } = encodeDelta(
      { collection: 'lines', runId: 'run-1', dimensions: 8, model: 'm' },
      records,
    );
    const { header, records: back } = decodeDelta(bytes, sha256);
    expect(header).toEqual({ collection: 'lines', runId: 'run-1', dimensions: 8, model: 'm', rows: 7 });
    expect(back).toEqual(records);
  });

  it('is deterministic: same records, same bytes, same hash', () => {
    const a = encodeDelta({ collection: 'words', runId: 'r', dimensions: 8, model: 'm' }, records);
    const b = encodeDelta({ collection: 'words', runId: 'r', dimensions: 8, model: 'm' }, records);
    expect(a.sha256).toBe(b.sha256);
  });

  it('holds an empty delta as a legitimate zero-row file', () => {
    const { bytes, sha256 } = encodeDelta({ collection: 'words', runId: 'r', dimensions: 8, model: 'm' }, []);
    expect(decodeDelta(bytes, sha256).records).toEqual([]);
  });

  it('rejects a flipped byte, a wrong hash and garbage with DeltaCorrupt', () => {
    const { bytes, sha256 } = encodeDelta(
      { collection: 'lines', runId: 'r', dimensions: 8, model: 'm' },
      records,
    );
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 100]! ^= 0xff;
    expect(() => decodeDelta(flipped, sha256)).toThrow(/sha256 mismatch/);
    expect(() => decodeDelta(Buffer.from('not arrow'))).toThrow(
      expect.objectContaining({ reason: 'DeltaCorrupt' }),
    );
  });

  it('refuses vectors of the wrong dimension at encode time', () => {
    expect(() =>
      encodeDelta({ collection: 'lines', runId: 'r', dimensions: 4, model: 'm' }, records),
    ).toThrow(/8 dimensions, expected 4/);
  });
});
