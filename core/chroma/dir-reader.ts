import Database from 'better-sqlite3';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { PipelineError } from '../errors.js';
import { readPickle, type PickleValue } from './pickle.js';

/**
 * Reads the records of one collection straight from the files of a Chroma 1.x persistent directory — the format the
 * original system's Python chromadb 1.5.x wrote, which this project's Chroma server (npm bindings 1.0.5) refuses to
 * open (its SQLite carries a migration the older server does not know; docs/adr/0014-migrate-by-reading-files.md).
 * No server and no Python: the SQLite metadata segment gives the live ids, documents and metadata; vectors come from
 * the write-ahead log (`embeddings_queue`) for writes newer than the HNSW segment's last persist, else from the HNSW
 * files (`data_level0.bin` by label, the id → label map in `index_metadata.pickle`). Read-only: open a copy anyway
 * (SQLite may still want to write its journal next to the file).
 */
export type DirMetadataValue = string | number | boolean | null | (string | number | boolean)[];

export interface DirRecord {
  id: string;
  document: string | null;
  metadata: Record<string, DirMetadataValue> | null;
  embedding: Float32Array;
}

export class ChromaDirError extends PipelineError {
  constructor(dir: string, problem: string) {
    super('SnapshotDamaged', `Chroma directory ${dir}: ${problem}`, { dir, problem });
  }
}

/** Log operations (chromadb `Operation`): ADD, UPDATE, UPSERT carry vectors; DELETE does not. */
const VECTOR_OPS = [0, 1, 2];
const DOCUMENT_KEY = 'chroma:document';

interface Hnsw {
  labelToIndex: Map<number, number>;
  idToLabel: Map<string, number>;
  fd: number;
  sizePerElement: number;
  offsetData: number;
  dim: number;
}

export interface ChromaDirCollection {
  name: string;
  dimension: number | null;
  count: number;
  /** The live records in id order, `pageSize` at a time. */
  pages(pageSize?: number): Generator<DirRecord[]>;
  close(): void;
}

export function openChromaDir(dir: string, collection: string): ChromaDirCollection {
  const sqlite = join(dir, 'chroma.sqlite3');
  if (!existsSync(sqlite)) throw new ChromaDirError(dir, 'has no chroma.sqlite3');
  const db = new Database(sqlite, { readonly: true, fileMustExist: true });
  let hnsw: Hnsw | undefined;
  try {
    const cols = db.prepare('SELECT id, dimension FROM collections WHERE name = ?').all(collection) as {
      id: string;
      dimension: number | null;
    }[];
    if (cols.length !== 1)
      throw new ChromaDirError(dir, `holds ${cols.length} collections named ${JSON.stringify(collection)}`);
    const col = cols[0]!;
    const segs = db.prepare('SELECT id, scope FROM segments WHERE collection = ?').all(col.id) as {
      id: string;
      scope: string;
    }[];
    const meta = segs.find((s) => s.scope === 'METADATA');
    const vec = segs.find((s) => s.scope === 'VECTOR');
    if (!meta || !vec)
      throw new ChromaDirError(dir, `collection ${collection} lacks a metadata or vector segment`);
    const maxSeq = (
      db.prepare('SELECT seq_id FROM max_seq_id WHERE segment_id = ?').get(vec.id) as
        { seq_id: number | bigint | Buffer } | undefined
    )?.seq_id;
    // Without a recorded persist of the HNSW segment every vector is still in the log.
    const hnswSeq = maxSeq === undefined ? -1 : seqNumber(maxSeq);
    hnsw = hnswSeq >= 0 ? openHnsw(join(dir, vec.id)) : undefined;
    const count = (
      db.prepare('SELECT count(*) AS n FROM embeddings WHERE segment_id = ?').get(meta.id) as { n: number }
    ).n;
    const hasArrays = !!db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'embedding_metadata_array'")
      .get();
    const idsPage = db.prepare(
      'SELECT id AS rowid, embedding_id AS id FROM embeddings WHERE segment_id = ? AND embedding_id > ? ORDER BY embedding_id LIMIT ?',
    );
    const logged = db.prepare(
      `SELECT vector, encoding FROM embeddings_queue WHERE topic LIKE ? AND id = ? AND seq_id > ?
       AND operation IN (${VECTOR_OPS.join(',')}) AND vector IS NOT NULL ORDER BY seq_id DESC LIMIT 1`,
    );
    const topic = `%${col.id}`;
    const opened = hnsw;
    const readOne = (id: string): Float32Array => {
      const row = logged.get(topic, id, hnswSeq) as { vector: Buffer; encoding: string | null } | undefined;
      if (row) {
        if (row.encoding && row.encoding.toUpperCase() !== 'FLOAT32')
          throw new ChromaDirError(dir, `log vector of ${id} is encoded ${row.encoding}, not FLOAT32`);
        return floats(row.vector);
      }
      const label = opened?.idToLabel.get(id);
      const index = label === undefined ? undefined : opened!.labelToIndex.get(label);
      if (index === undefined)
        throw new ChromaDirError(dir, `no vector for ${JSON.stringify(id)} in the log or the HNSW index`);
      const out = Buffer.alloc(opened!.dim * 4);
      const at = index * opened!.sizePerElement + opened!.offsetData;
      if (readSync(opened!.fd, out, 0, out.length, at) !== out.length)
        throw new ChromaDirError(dir, `data_level0.bin is truncated at element ${index}`);
      return floats(out);
    };
    function* pages(pageSize = 1000): Generator<DirRecord[]> {
      let after = '';
      for (;;) {
        const rows = idsPage.all(meta!.id, after, pageSize) as { rowid: number; id: string }[];
        if (!rows.length) return;
        after = rows[rows.length - 1]!.id;
        const metas = readMetadata(
          db,
          rows.map((r) => r.rowid),
          hasArrays,
        );
        yield rows.map((r) => {
          const m = metas.get(r.rowid) ?? {};
          const document = typeof m[DOCUMENT_KEY] === 'string' ? (m[DOCUMENT_KEY] as string) : null;
          const metadata = Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith('chroma:')));
          const embedding = readOne(r.id);
          if (col.dimension && embedding.length !== col.dimension)
            throw new ChromaDirError(
              dir,
              `vector of ${r.id} has ${embedding.length} dimensions, the collection ${col.dimension}`,
            );
          return { id: r.id, document, metadata: Object.keys(metadata).length ? metadata : null, embedding };
        });
      }
    }
    return {
      name: collection,
      dimension: col.dimension,
      count,
      pages,
      close: () => {
        if (hnsw) closeSync(hnsw.fd);
        db.close();
      },
    };
  } catch (err) {
    if (hnsw) closeSync(hnsw.fd);
    db.close();
    throw err;
  }
}

function floats(b: Buffer): Float32Array {
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(i * 4);
  return out;
}

/** seq ids are stored as integers or (older schemas) big-endian 8-byte blobs. */
function seqNumber(v: number | bigint | Buffer): number {
  if (Buffer.isBuffer(v)) return Number(v.readBigUInt64BE(0));
  return Number(v);
}

function readMetadata(
  db: Database.Database,
  rowids: number[],
  hasArrays: boolean,
): Map<number, Record<string, DirMetadataValue>> {
  const out = new Map<number, Record<string, DirMetadataValue>>();
  const marks = rowids.map(() => '?').join(',');
  type Row = {
    id: number;
    key: string;
    string_value: string | null;
    int_value: number | null;
    float_value: number | null;
    bool_value: number | null;
  };
  const value = (r: Row) =>
    r.string_value !== null
      ? r.string_value
      : r.int_value !== null
        ? r.int_value
        : r.float_value !== null
          ? r.float_value
          : r.bool_value !== null
            ? r.bool_value === 1
            : null;
  const rows = db
    .prepare(
      `SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata WHERE id IN (${marks})`,
    )
    .all(...rowids) as Row[];
  for (const r of rows) {
    const m = out.get(r.id) ?? {};
    m[r.key] = value(r);
    out.set(r.id, m);
  }
  if (hasArrays) {
    const arrays = db
      .prepare(
        `SELECT id, key, string_value, int_value, float_value, bool_value FROM embedding_metadata_array WHERE id IN (${marks}) ORDER BY rowid`,
      )
      .all(...rowids) as Row[];
    for (const r of arrays) {
      const m = out.get(r.id) ?? {};
      const list = Array.isArray(m[r.key]) ? (m[r.key] as (string | number | boolean)[]) : [];
      const v = value(r);
      if (v !== null) list.push(v);
      m[r.key] = list;
      out.set(r.id, m);
    }
  }
  return out;
}

/** The HNSW segment's files: header.bin (hnswlib's saved header), data_level0.bin, index_metadata.pickle. */
function openHnsw(seg: string): Hnsw {
  // hnswlib's header (offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset,
  // offsetData as size_t, then levels and M): 96 bytes; Chroma's persistent fork puts a 4-byte format version first.
  const header = readFileSync(join(seg, 'header.bin'));
  const skip = header.length === 100 ? 4 : header.length === 96 ? 0 : -1;
  if (skip < 0) throw new ChromaDirError(seg, `header.bin is ${header.length} bytes, not an hnswlib header`);
  const size = (at: number) => Number(header.readBigUInt64LE(skip + at));
  const count = size(16);
  const sizePerElement = size(24);
  const labelOffset = size(32);
  const offsetData = size(40);
  if (labelOffset <= offsetData || labelOffset + 8 > sizePerElement || (labelOffset - offsetData) % 4)
    throw new ChromaDirError(seg, 'header.bin describes no float32 elements');
  const dim = (labelOffset - offsetData) / 4;
  const pickle = readPickle(
    readFileSync(join(seg, 'index_metadata.pickle')),
    join(seg, 'index_metadata.pickle'),
  );
  const idToLabel = new Map<string, number>();
  const map = pickle instanceof Map ? pickle.get('id_to_label') : undefined;
  if (!(map instanceof Map)) throw new ChromaDirError(seg, 'index_metadata.pickle holds no id_to_label map');
  for (const [k, v] of map as Map<PickleValue, PickleValue>) idToLabel.set(String(k), Number(v));
  const fd = openSync(join(seg, 'data_level0.bin'), 'r');
  try {
    if (fstatSync(fd).size < count * sizePerElement)
      throw new ChromaDirError(seg, `data_level0.bin is shorter than its ${count} elements`);
    // Labels sit at label_offset of every element: one pass in 16 MB reads.
    const labelToIndex = new Map<number, number>();
    const per = Math.max(1, Math.floor((16 << 20) / sizePerElement));
    const buf = Buffer.alloc(per * sizePerElement);
    for (let first = 0; first < count; first += per) {
      const n = Math.min(per, count - first);
      readSync(fd, buf, 0, n * sizePerElement, first * sizePerElement);
      for (let i = 0; i < n; i++)
        labelToIndex.set(Number(buf.readBigUInt64LE(i * sizePerElement + labelOffset)), first + i);
    }
    return { labelToIndex, idToLabel, fd, sizePerElement, offsetData, dim };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
