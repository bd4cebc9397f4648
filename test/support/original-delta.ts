import { randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ChromaClient } from 'chromadb';
import { create as tarCreate } from 'tar';
import { startChromaServer } from '../../core/chroma/server.js';
import type { Collection } from '../../core/contracts/ids.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { VectorRecord } from '../../core/ports/vector-store.js';

/**
 * Deltas as the original system's workers wrote them (seed-system §7.1, §7.2, §8.1), for mixed-fleet tests.
 *
 * `writeChromaDir` builds the Chroma persistent directory with this project's Chroma server until the Python
 * chromadb 1.5.x fixture writer (issue 15 item 1) is there; everything after it takes a directory, so a
 * Python-written one drops in unchanged: `uploadOriginalDelta(objects, bucket, pythonDir, …)`.
 */

/** One receipt's vectors of one collection in a fresh directory, as the original created it: default distance
 * (squared L2, no `hnsw:space`), metadata `{description: "Collection: <c>"}`, no embedding function; the server is
 * stopped (flushed) before this returns, as the original closed its client before tarring. */
export async function writeChromaDir(dir: string, c: Collection, records: VectorRecord[]): Promise<void> {
  const server = await startChromaServer({ path: dir });
  try {
    const client = new ChromaClient({ host: server.host, port: server.port });
    const col = await client.createCollection({
      name: c,
      embeddingFunction: null as never,
      metadata: { description: `Collection: ${c}` },
    });
    if (records.length)
      await col.add({
        ids: records.map((r) => r.id),
        embeddings: records.map((r) => Array.from(r.embedding)),
        documents: records.map((r) => r.document),
        metadatas: records.map((r) => r.metadata as never),
      });
  } finally {
    await server.stop();
  }
}

/**
 * The directory as a gzip tarball. `dot`: members `./chroma.sqlite3`, … as Python's `tar.add(dir, arcname=".")`
 * (the original's `upload_delta_tarball`); `flat`: members named relative to the directory without `./`.
 */
export async function tarGzOf(dir: string, style: 'dot' | 'flat' = 'dot'): Promise<Buffer> {
  const members = style === 'dot' ? ['.'] : await readdir(dir);
  const chunks: Buffer[] = [];
  for await (const chunk of tarCreate({ gzip: true, cwd: dir, portable: true }, members))
    chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export type OriginalLayout =
  /** `{c}/delta/{run}/delta.tar.gz`, prefix recorded without a trailing slash (era C). */
  | 'tar.gz'
  /** The same, prefix recorded with a trailing slash (era A). */
  | 'tar.gz-slash'
  /** Files one by one under `{c}/delta/{run}/{uuid_hex}/`, that deeper prefix recorded with its slash (Nov–Dec 2025). */
  | 'files';

/** Uploads a delta directory in one of the original's layouts; returns the prefix its CompactionRun records. */
export async function uploadOriginalDelta(
  objects: ObjectStore,
  bucket: string,
  dir: string,
  o: { collection: Collection; runId: string; layout: OriginalLayout; tarStyle?: 'dot' | 'flat' },
): Promise<string> {
  const prefix = `${o.collection}/delta/${o.runId}`;
  if (o.layout !== 'files') {
    await objects.put(bucket, `${prefix}/delta.tar.gz`, await tarGzOf(dir, o.tarStyle), {
      contentType: 'application/gzip',
      metadata: { delta_key: prefix, run_id: o.runId },
    });
    return o.layout === 'tar.gz-slash' ? `${prefix}/` : prefix;
  }
  const deep = `${prefix}/${randomUUID().replaceAll('-', '')}`;
  for (const file of await filesUnder(dir))
    await objects.put(bucket, `${deep}/${relative(dir, file).split('\\').join('/')}`, await readFile(file));
  return `${deep}/`;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if ((await stat(path)).isDirectory()) out.push(...(await filesUnder(path)));
    else out.push(path);
  }
  return out;
}

/**
 * A CompactionRun item exactly as the original's `CompactionRun.to_item()` stored it (seed-system §8.1): prefixes,
 * states PENDING, merged counts 0, absent timestamps and errors as NULL, the GSI1 keys; no digest, no vector count.
 */
export function originalRunItem(o: {
  runId: string;
  imageId: string;
  receiptId: number;
  linesPrefix: string;
  wordsPrefix: string;
  createdAt?: string;
}): { PK: string; SK: string } & Record<string, unknown> {
  const created = o.createdAt ?? new Date().toISOString().replace('Z', '+00:00');
  return {
    PK: `IMAGE#${o.imageId}`,
    SK: `RECEIPT#${String(o.receiptId).padStart(5, '0')}#COMPACTION_RUN#${o.runId}`,
    GSI1PK: 'RUNS',
    GSI1SK: `CREATED_AT#${created}`,
    TYPE: 'COMPACTION_RUN',
    run_id: o.runId,
    image_id: o.imageId,
    receipt_id: o.receiptId,
    lines_delta_prefix: o.linesPrefix,
    words_delta_prefix: o.wordsPrefix,
    lines_state: 'PENDING',
    words_state: 'PENDING',
    lines_merged_vectors: 0,
    words_merged_vectors: 0,
    created_at: created,
    lines_started_at: null,
    lines_finished_at: null,
    words_started_at: null,
    words_finished_at: null,
    updated_at: null,
    lines_error: null,
    words_error: null,
  };
}
