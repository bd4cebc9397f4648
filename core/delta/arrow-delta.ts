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
 * Delta file (DESIGN §4.3): Arrow IPC with columns id, document, metadata (JSON), embedding (fixed-size list of
 * float32), and schema metadata naming collection, run, dimension, model and row count. The SHA-256 of the bytes is
 * recorded in the CompactionRun and verified before merging.
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
  const embeddingType = new FixedSizeList(dims, new Field('item', new Float32(), false));
  const embedding = makeData({
    type: embeddingType,
    length: records.length,
    nullCount: 0,
    child: makeData({ type: new Float32(), length: flat.length, nullCount: 0, data: flat }),
  });
  const strings = (values: string[]) => vectorFromArray(values, new Utf8()).data[0] as Data<Utf8>;
  const columns = {
    id: strings(records.map((r) => r.id)),
    document: strings(records.map((r) => r.document)),
    metadata: strings(records.map((r) => JSON.stringify(r.metadata))),
  };
  const schema = new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('document', new Utf8(), false),
      new Field('metadata', new Utf8(), false),
      new Field('embedding', embeddingType, false),
    ],
    new Map([
      ['format', DELTA_FORMAT],
      ['collection', header.collection],
      ['run_id', header.runId],
      ['dimensions', String(dims)],
      ['model', header.model],
      ['rows', String(records.length)],
    ]),
  );
  const batch = new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length: records.length,
      nullCount: 0,
      children: [columns.id, columns.document, columns.metadata, embedding],
    }),
  );
  const bytes = Buffer.from(tableToIPC(new Table(schema, [batch]), 'file'));
  return { bytes, sha256: sha256Hex(bytes) };
}

/** Decodes and checks a delta: hash (when given), format, declared row count and dimensions. */
export function decodeDelta(
  bytes: Uint8Array,
  expectedSha256?: string,
): { header: DeltaHeader; records: VectorRecord[] } {
  const corrupt = (why: string) => new PipelineError('DeltaCorrupt', why, { expectedSha256 });
  if (expectedSha256 !== undefined) {
    const actual = sha256Hex(bytes);
    if (actual !== expectedSha256)
      throw corrupt(`sha256 mismatch: expected ${expectedSha256}, got ${actual}`);
  }
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw corrupt(`not an Arrow IPC file: ${String(err)}`);
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
  if (table.numRows !== header.rows)
    throw corrupt(`delta declares ${header.rows} rows but holds ${table.numRows}`);
  const ids = table.getChild('id');
  const documents = table.getChild('document');
  const metadatas = table.getChild('metadata');
  const embeddings = table.getChild('embedding');
  if (!ids || !documents || !metadatas || !embeddings) throw corrupt('delta is missing a column');
  const flat = new Float32Array(table.numRows * header.dimensions);
  let offset = 0;
  for (const data of embeddings.data) {
    const child = data.children[0]!;
    const start = child.offset + data.offset * header.dimensions;
    const values = (child.values as Float32Array).subarray(start, start + data.length * header.dimensions);
    flat.set(values, offset);
    offset += values.length;
  }
  const records: VectorRecord[] = [];
  for (let i = 0; i < table.numRows; i++) {
    records.push({
      id: ids.get(i) as string,
      document: documents.get(i) as string,
      metadata: JSON.parse(metadatas.get(i) as string) as Metadata,
      embedding: flat.slice(i * header.dimensions, (i + 1) * header.dimensions),
    });
  }
  return { header, records };
}
