import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { EmbedMessage } from '../../../../core/contracts/embed-message.js';
import { LineRow, WordRow } from '../../../../core/contracts/ndjson-rows.js';
import { parseOrThrow } from '../../../../core/contracts/validation.js';
import { lineVectorId, parseVectorId, wordVectorId } from '../../../../core/contracts/ids.js';
import { embeddingJobName, EmbeddingJobSpec } from '../../../../core/contracts/embedding-job.js';
import { CompactionMessage } from '../../../../core/contracts/compaction-message.js';
import { newCompactionRun, runCollection } from '../../../../core/contracts/compaction-run.js';
import { InputError } from '../../../../core/errors.js';
import { CRD_FILE, renderCrd } from '../../../../crds/generate.js';
import { embeddingJobCrd } from '../../../../crds/embedding-job-crd.js';

const IMAGE = '3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b';
const message = { image_id: IMAGE, receipt_id: 1, artifacts_bucket: 'bkt', lines_key: 'l', words_key: 'w' };
const geometry = {
  text: 'TOTAL',
  bounding_box: { x: 0.1, y: 0.2, width: 0.3, height: 0.02 },
  top_left: { x: 0.1, y: 0.22 },
  top_right: { x: 0.4, y: 0.22 },
  bottom_left: { x: 0.1, y: 0.2 },
  bottom_right: { x: 0.4, y: 0.2 },
  angle_degrees: 0,
  angle_radians: 0,
  confidence: 0.98,
};

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error('expected an InputError');
}

describe('EMBED message', () => {
  it('accepts a valid body and keeps unknown fields', () => {
    expect(EmbedMessage.parse({ ...message, extra: 1 })).toMatchObject({ extra: 1, receipt_id: 1 });
  });

  it.each([
    [{ ...message, image_id: 'not-a-uuid' }, 'image_id'],
    [{ ...message, receipt_id: 0 }, 'receipt_id'],
    [{ ...message, receipt_id: 1.5 }, 'receipt_id'],
    [{ ...message, lines_key: '' }, 'lines_key'],
    [{ image_id: IMAGE, receipt_id: 1, artifacts_bucket: 'bkt', lines_key: 'l' }, 'words_key'],
  ])('names the bad field %#', (body, field) => {
    const err = inputError(() => parseOrThrow(EmbedMessage, body));
    expect(err.where.field).toBe(field);
    expect(err.message).toContain(`field ${field}`);
  });
});

describe('NDJSON rows', () => {
  const line = {
    receipt_id: 1,
    image_id: IMAGE,
    line_id: 3,
    ...geometry,
    embedding_status: 'NONE',
    is_noise: false,
  };

  it('parses a full line row and a word row with extracted_data', () => {
    expect(LineRow.parse(line).bounding_box.height).toBe(0.02);
    const word = WordRow.parse({
      ...line,
      word_id: 2,
      extracted_data: { type: 'phone', value: '(555) 123-4567' },
    });
    expect(word.extracted_data?.type).toBe('phone');
    expect(WordRow.parse({ ...line, word_id: 2 }).extracted_data).toBeNull();
  });

  it('names file, row and nested field', () => {
    const bad = { ...line, bounding_box: { ...geometry.bounding_box, x: 'left' } };
    const err = inputError(() => parseOrThrow(LineRow, bad, { file: 'lines.ndjson', row: 7 }));
    expect(err.where).toEqual({ file: 'lines.ndjson', row: 7, field: 'bounding_box.x' });
    expect(err.message).toMatch(/^lines\.ndjson, row 7, field bounding_box\.x: /);
    expect(err.reason).toBe('BadInput');
  });

  it('rejects a confidence above 1 and an unknown embedding status', () => {
    expect(inputError(() => parseOrThrow(LineRow, { ...line, confidence: 1.2 })).where.field).toBe(
      'confidence',
    );
    expect(inputError(() => parseOrThrow(LineRow, { ...line, embedding_status: 'DONE' })).where.field).toBe(
      'embedding_status',
    );
  });
});

describe('vector ids', () => {
  it('zero-pads and round-trips', () => {
    expect(lineVectorId(IMAGE, 1, 3)).toBe(`IMAGE#${IMAGE}#RECEIPT#00001#LINE#00003`);
    const w = wordVectorId(IMAGE, 12, 3, 45);
    expect(w).toBe(`IMAGE#${IMAGE}#RECEIPT#00012#LINE#00003#WORD#00045`);
    expect(parseVectorId(w)).toEqual({ imageId: IMAGE, receiptId: 12, lineId: 3, wordId: 45 });
    expect(parseVectorId('IMAGE#x#RECEIPT#1#LINE#2')).toBeUndefined();
  });
});

describe('EmbeddingJob', () => {
  it('names are deterministic per payload and differ across payloads', () => {
    expect(embeddingJobName(message)).toBe(embeddingJobName({ ...message }));
    expect(embeddingJobName(message)).not.toBe(embeddingJobName({ ...message, receipt_id: 2 }));
    expect(embeddingJobName(message)).toMatch(/^ej-3f2a9c1e-1-[0-9a-f]{8}$/);
  });

  it('defaults priority, collections and source', () => {
    const spec = EmbeddingJobSpec.parse({
      imageId: IMAGE,
      receiptId: 1,
      artifactsBucket: 'bkt',
      linesKey: 'l',
      wordsKey: 'w',
    });
    expect(spec).toMatchObject({ priority: 0, collections: ['lines', 'words'], source: 'manual' });
  });

  it('the CRD in crds/ is what the zod schemas generate (no drift)', () => {
    expect(readFileSync(CRD_FILE, 'utf8')).toBe(renderCrd());
  });

  it('the CRD follows the API conventions kubectl users expect', () => {
    const crd = embeddingJobCrd() as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const version = crd.spec.versions[0];
    const { spec, status } = version.schema.openAPIV3Schema.properties;
    expect(crd.spec.names.categories).toEqual(['receipts', 'embedding']);
    expect(status.properties.conditions).toMatchObject({
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    });
    for (const t of ['startTime', 'completionTime', 'nextAttemptTime'])
      expect(status.properties[t].format).toBe('date-time');
    expect(status.properties.conditions.items.properties.lastTransitionTime.format).toBe('date-time');
    expect(spec['x-kubernetes-validations']).toEqual([expect.objectContaining({ rule: 'self == oldSelf' })]);
    const columns = version.additionalPrinterColumns as { name: string; priority?: number }[];
    expect(columns.map((c) => `${c.name}${c.priority ? `:${c.priority}` : ''}`)).toEqual([
      'Phase',
      'Attempts',
      'Lines',
      'Words',
      'Compacted',
      'Age',
      'Reason:1',
      'Message:1',
    ]);
  });
});

describe('compaction contracts', () => {
  it('builds a run with both collections PENDING', () => {
    const sha = 'a'.repeat(64);
    const run = newCompactionRun({
      runId: 'r1',
      imageId: IMAGE,
      receiptId: 2,
      deltas: {
        lines: { key: 'lines/delta/r1/delta.arrow', sha256: sha, vectors: 3 },
        words: { key: 'k', sha256: sha, vectors: 9 },
      },
    });
    expect(run.SK).toBe('RECEIPT#00002#COMPACTION_RUN#r1');
    expect(runCollection(run, 'words')).toMatchObject({ state: 'PENDING', vectors: 9, deltaKey: 'k' });
  });

  it('rejects a compaction message with an unknown entity type', () => {
    const m = {
      source: 'dynamodb_stream',
      entity_type: 'RECEIPT_LETTER',
      entity_data: {},
      event_name: 'INSERT',
      timestamp: 't',
      stream_record_id: 's',
    };
    expect(inputError(() => parseOrThrow(CompactionMessage, m)).where.field).toBe('entity_type');
  });
});
