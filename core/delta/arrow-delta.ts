import {
  Field,
  FixedSizeList,
  Float32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
  type Data,
} from 'apache-arrow';
import { createHash } from 'node:crypto';
import { PipelineError } from '../errors.js';
import type { Collection } from '../contracts/ids.js';
import type { Metadata, VectorRecord } from '../ports/vector-store.js';

/**
 * Delta file (docs/adr/0009-wire-contracts.md): Arrow IPC with columns id, document, metadata (JSON), embedding
 * (fixed-size list of float32), and schema metadata naming collection, run, dimension, model and row count. The SHA-256
 * of the bytes is recorded in the CompactionRun and verified before merging.
 */
export const DELTA_FORMAT = 'receipt-embeddings/delta-v1';

export interface DeltaHeader {
  collection: Collection;
  runId: string;
  dimensions: number;
  model: string;
  rows: number;
}

export interface EncodedDelta {
  bytes: Buffer;
  sha256: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function encodeDelta(header: Omit<DeltaHeader, 'rows'>, records: VectorRecord[]): EncodedDelta {
  const dims = header.dimensions;
  const flat = new Float32Array(records.length * dims);
  records.forEach((r, i) => {
    if (r.embedding.length !== dims) {
      throw new PipelineError(
        'BadInput',
        `vector ${r.id} has ${r.embedding.length} dimensions, expected ${dims}`,
      );
    }
    flat.set(r.embedding, i * dims);
  });
  const bytes = Buffer.from(
    deltaFile({
      listSize: dims,
      flat,
      ids: records.map((r) => r.id),
      documents: records.map((r) => r.document),
      metadata: records.map((r) => JSON.stringify(r.metadata)),
      header: {
        collection: header.collection,
        runId: header.runId,
        dimensions: String(dims),
        model: header.model,
        rows: String(records.length),
      },
    }),
  );
  return { bytes, sha256: sha256Hex(bytes) };
}

/**
 * The Arrow IPC file of a delta, laid out from what it is given without any check: encodeDelta checks first, and
 * tests use it to write the hostile files a foreign writer could (declared dimensions or rows that do not match).
 */
export function deltaFile(o: {
  /** Floats per embedding; `flat` holds one list of them per id. */
  listSize: number;
  flat: Float32Array;
  ids: string[];
  documents: string[];
  /** JSON per row, as it is to be stored. */
  metadata: string[];
  /** The schema metadata, as strings. */
  header: { collection: string; runId: string; dimensions: string; model: string; rows: string };
}): Uint8Array {
  const rows = o.ids.length;
  const embeddingType = new FixedSizeList(o.listSize, new Field('item', new Float32(), false));
  const embedding = makeData({
    type: embeddingType,
    length: rows,
    nullCount: 0,
    child: makeData({ type: new Float32(), length: o.flat.length, nullCount: 0, data: o.flat }),
  });
  const strings = (values: string[]) => vectorFromArray(values, new Utf8()).data[0] as Data<Utf8>;
  const schema = new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('document', new Utf8(), false),
      new Field('metadata', new Utf8(), false),
      new Field('embedding', embeddingType, false),
    ],
    new Map([
      ['format', DELTA_FORMAT],
      ['collection', o.header.collection],
      ['run_id', o.header.runId],
      ['dimensions', o.header.dimensions],
      ['model', o.header.model],
      ['rows', o.header.rows],
    ]),
  );
  const batch = new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length: rows,
      nullCount: 0,
      children: [strings(o.ids), strings(o.documents), strings(o.metadata), embedding],
    }),
  );
  return tableToIPC(new Table(schema, [batch]), 'file');
}

/** Largest embedding dimension a delta may declare (OpenAI's largest model has 3072; 16384 leaves room). */
export const MAX_DELTA_DIMENSIONS = 16_384;
/** Largest delta object the compactor downloads (a receipt's delta is a few MB). */
export const MAX_DELTA_BYTES = 256 * 1024 * 1024;

/**
 * Decodes and checks a delta: hash (when given), format, declared row count and dimensions. Every failure is a
 * PipelineError('DeltaCorrupt'), and nothing is allocated from a declared size before it is checked against what
 * the file holds: a declared dimension of 3e9 once allocated ~12 GB per row, and -1 threw a bare RangeError.
 */
export function decodeDelta(
  bytes: Uint8Array,
  expectedSha256?: string,
): { header: DeltaHeader; records: VectorRecord[] } {
  const corrupt = (why: string, cause?: unknown) =>
    new PipelineError('DeltaCorrupt', why, { expectedSha256 }, cause === undefined ? undefined : { cause });
  try {
    return decodeChecked(bytes, expectedSha256, corrupt);
  } catch (err) {
    if (err instanceof PipelineError) throw err;
    throw corrupt(`delta does not decode: ${String(err)}`, err);
  }
}

function decodeChecked(
  bytes: Uint8Array,
  expectedSha256: string | undefined,
  corrupt: (why: string, cause?: unknown) => PipelineError,
): { header: DeltaHeader; records: VectorRecord[] } {
  if (bytes.length > MAX_DELTA_BYTES)
    throw corrupt(`delta is ${bytes.length} bytes, over the limit of ${MAX_DELTA_BYTES}`);
  if (expectedSha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== expectedSha256)
      throw corrupt(`sha256 mismatch: expected ${expectedSha256}, got ${actual}`);
  }
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw corrupt(`not an Arrow IPC file: ${String(err)}`, err);
  }
  const meta = table.schema.metadata;
  if (meta.get('format') !== DELTA_FORMAT) throw corrupt(`unknown delta format ${meta.get('format')}`);
  const header: DeltaHeader = {
    collection: meta.get('collection') as Collection,
    runId: meta.get('run_id') ?? '',
    dimensions: Number(meta.get('dimensions')),
    model: meta.get('model') ?? '',
    rows: Number(meta.get('rows')),
  };
  const dims = header.dimensions;
  if (!Number.isInteger(dims) || dims < 1 || dims > MAX_DELTA_DIMENSIONS)
    throw corrupt(
      `delta declares dimensions ${JSON.stringify(meta.get('dimensions'))}, not an integer in [1, ${MAX_DELTA_DIMENSIONS}]`,
    );
  if (!Number.isInteger(header.rows) || header.rows < 0)
    throw corrupt(`delta declares rows ${JSON.stringify(meta.get('rows'))}, not a count`);
  if (table.numRows !== header.rows)
    throw corrupt(`delta declares ${header.rows} rows but holds ${table.numRows}`);
  const ids = table.getChild('id');
  const documents = table.getChild('document');
  const metadatas = table.getChild('metadata');
  const embeddings = table.getChild('embedding');
  if (!ids || !documents || !metadatas || !embeddings) throw corrupt('delta is missing a column');
  const type = embeddings.type as unknown;
  if (!(type instanceof FixedSizeList) || type.listSize !== dims)
    throw corrupt(
      `embedding column is ${String(type)}, not a fixed-size list of ${dims} (the declared dimensions)`,
    );
  // The values must be in the file before anything that size is allocated.
  let held = 0;
  for (const data of embeddings.data) {
    const child = data.children[0];
    const values = child?.values as unknown;
    if (!child || !(values instanceof Float32Array)) throw corrupt('embedding values are not float32');
    const start = child.offset + data.offset * dims;
    if (start + data.length * dims > values.length)
      throw corrupt('embedding column is shorter than declared');
    held += data.length * dims;
  }
  if (held !== table.numRows * dims)
    throw corrupt(`embedding column holds ${held} values, expected ${table.numRows * dims}`);
  const flat = new Float32Array(held);
  let offset = 0;
  for (const data of embeddings.data) {
    const child = data.children[0]!;
    const start = child.offset + data.offset * dims;
    const values = (child.values as Float32Array).subarray(start, start + data.length * dims);
    flat.set(values, offset);
    offset += values.length;
  }
  const records: VectorRecord[] = [];
  for (let i = 0; i < table.numRows; i++) {
    let metadata: Metadata;
    try {
      metadata = JSON.parse(metadatas.get(i) as string) as Metadata;
    } catch (err) {
      throw corrupt(`row ${i + 1}: metadata is not JSON: ${String(err)}`, err);
    }
    records.push({
      id: ids.get(i) as string,
      document: documents.get(i) as string,
      metadata,
      embedding: flat.slice(i * dims, (i + 1) * dims),
    });
  }
  return { header, records };
}
