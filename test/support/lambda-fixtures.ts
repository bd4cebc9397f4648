import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Collection } from '../../core/contracts/ids.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import { cacheRoot } from '../harness/versions.js';

/**
 * Snapshots and deltas written by the original system's own library, Python chromadb 1.5.x
 * (test/fixtures/lambda/write_fixtures.py, whose docstring describes the spec and the output), generated in the test
 * run and cached outside the repo keyed by the chromadb version, the script and the spec.
 */
export const CHROMADB_PY_VERSION = '1.5.9';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const SCRIPT = join(repo, 'test', 'fixtures', 'lambda', 'write_fixtures.py');

export interface SnapshotSpec {
  collection: Collection;
  count: number;
  /** `tar`: snapshot.tar.gz + .snapshot_hash; `legacy`: the uncompressed files under the version prefix. */
  layout: 'tar' | 'legacy';
  /** The original's version id, `YYYYMMDD_HHMMSS`. */
  version: string;
  /** Write latest-pointer.txt naming this version (default true). */
  pointer?: boolean;
  /** Later updates, re-embeds and deletions, as compactions left a long-lived snapshot. */
  churn?: boolean;
}

export interface DeltaSpec {
  collection: Collection;
  count: number;
  /** `tar`: {c}/delta/{run_id}/delta.tar.gz; `files`: {c}/delta/{run_id}/{uuid_hex}/<files> (Nov–Dec 2025). */
  layout: 'tar' | 'files';
  run_id: string;
  /** The prefix recorded with a trailing slash (era A), else without (era C). */
  trailing_slash?: boolean;
  /** `A`: the era-A worker's minimal metadata (receipt_id a string); default `C`. */
  era?: 'A' | 'C';
}

export interface FixtureSpec {
  seed?: number;
  dim?: number;
  snapshots?: SnapshotSpec[];
  deltas?: DeltaSpec[];
}

export interface FixtureManifest {
  chromadb: string;
  snapshots: (SnapshotSpec & { name: string; keys: string[]; count: number })[];
  deltas: (DeltaSpec & { name: string; keys: string[]; count: number; prefix: string })[];
}

export interface LambdaFixtures {
  dir: string;
  manifest: FixtureManifest;
  /** What chromadb 1.5.x itself reads back from a snapshot or delta (`name` from the manifest), sorted by id. */
  expected(name: string): ExpectedRecords;
  /** Puts every object into `bucket` under its key (optionally below `prefix`). Returns the keys. */
  upload(store: ObjectStore, bucket: string, prefix?: string): Promise<string[]>;
}

export interface ExpectedRecords {
  ids: string[];
  documents: (string | null)[];
  metadatas: (Record<string, unknown> | null)[];
  embeddings: Float32Array[];
}

/** The chromadb 1.5.x venv (tools/testenv/chromadb-venv.sh builds it, or finds it built). */
export function chromadbPyVenv(): string {
  return execFileSync(join(repo, 'tools', 'testenv', 'chromadb-venv.sh'), {
    encoding: 'utf8',
    env: { ...process.env, CHROMADB_PY_VERSION, TESTENV_CACHE: cacheRoot() },
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/** Generates (or finds cached) the fixtures of `spec`. Synchronous: call it from a beforeAll with a long timeout. */
export function lambdaFixtures(spec: FixtureSpec): LambdaFixtures {
  const key = createHash('sha256')
    .update(readFileSync(SCRIPT))
    .update(JSON.stringify(spec))
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheRoot(), 'lambda-fixtures', `chromadb-${CHROMADB_PY_VERSION}`, key);
  if (!existsSync(join(dir, 'manifest.json'))) {
    const venv = chromadbPyVenv();
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'spec.json'), JSON.stringify(spec));
    execFileSync(join(venv, 'bin', 'python'), [SCRIPT, '--out', tmp, '--spec', join(tmp, 'spec.json')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ANONYMIZED_TELEMETRY: 'False', PYTHONDONTWRITEBYTECODE: '1' },
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir); // complete fixtures appear under their key in one step
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as FixtureManifest;
  return {
    dir,
    manifest,
    expected: (name) => readExpected(dir, name, spec.dim ?? 1536),
    upload: (store, bucket, prefix = '') => uploadTree(store, bucket, join(dir, 'bucket'), prefix),
  };
}

function readExpected(dir: string, name: string, dim: number, sub = 'expected'): ExpectedRecords {
  const json = JSON.parse(readFileSync(join(dir, sub, `${name}.json`), 'utf8')) as Omit<
    ExpectedRecords,
    'embeddings'
  >;
  const raw = readFileSync(join(dir, sub, `${name}.f32`));
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const embeddings = json.ids.map((_, i) => all.slice(i * dim, (i + 1) * dim));
  return { ...json, embeddings };
}

async function uploadTree(
  store: ObjectStore,
  bucket: string,
  root: string,
  prefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)],
    );
  for (const file of walk(root)) {
    const key = prefix + relative(root, file).split('\\').join('/');
    await store.put(bucket, key, readFileSync(file));
    keys.push(key);
  }
  return keys;
}

/** What Python chromadb 1.5.x reads from collection `c` of the Chroma directory `dir` (it opens a copy). */
export function readWithChromadbPy(dir: string, c: Collection, dim: number): ExpectedRecords {
  return runPyReader('read_collection.py', ['--dir', dir, '--collection', c], (out) =>
    readExpected(out, c, dim, ''),
  );
}

/**
 * What Python chromadb 1.5.x reads from collection `c` of a published version directory (hot + sealed segments,
 * tombstones applied: test/fixtures/lambda/read_version.py), and the k nearest live records per query vector.
 */
export function readVersionWithChromadbPy(
  dir: string,
  c: Collection,
  dim: number,
  queries: Float32Array[] = [],
  k = 5,
): ExpectedRecords & { nearest: { ids: string[][]; distances: number[][] } } {
  const work = mkdtempSync(join(tmpdir(), 'chromadb-py-queries-'));
  try {
    const q = join(work, 'q.f32');
    const all = new Float32Array(queries.length * dim);
    queries.forEach((v, i) => all.set(v, i * dim));
    writeFileSync(q, Buffer.from(all.buffer));
    const args = ['--dir', dir, '--collection', c, '--dim', String(dim), '--k', String(k)];
    return runPyReader('read_version.py', [...args, ...(queries.length ? ['--queries', q] : [])], (out) => ({
      ...readExpected(out, c, dim, ''),
      nearest: queries.length
        ? (JSON.parse(readFileSync(join(out, `${c}.query.json`), 'utf8')) as {
            ids: string[][];
            distances: number[][];
          })
        : { ids: [], distances: [] },
    }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function runPyReader<T>(script: string, args: string[], read: (out: string) => T): T {
  const out = mkdtempSync(join(tmpdir(), 'chromadb-py-read-'));
  const c = args[args.indexOf('--collection') + 1]!;
  try {
    execFileSync(
      join(chromadbPyVenv(), 'bin', 'python'),
      [join(dirname(SCRIPT), script), ...args, '--out', out, '--name', c],
      { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ANONYMIZED_TELEMETRY: 'False' } },
    );
    return read(out);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
