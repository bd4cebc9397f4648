// `embedctl migrate` takes over an index the original Lambda system's own library wrote (Python chromadb 1.5.x,
// ≥ 5,000 vectors per collection at 1536 dimensions, test/integration/migrate/spec.ts) from moto's S3: dry run,
// a crash after the first install and a resume, the exact live result (ids, documents, metadata, float32 vectors),
// idempotence, and bad archives refused with a reason and nothing changed.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { S3Store } from '../../../core/aws/s3-store.js';
import { startChromaServer } from '../../../core/chroma/server.js';
import { ChromaVectorStore } from '../../../core/chroma/store.js';
import type { Collection } from '../../../core/contracts/ids.js';
import { DirectoryObjectStore } from '../../../core/local/dir-store.js';
import { migrateMetadata } from '../../../core/migrate/metadata.js';
import { readPointer } from '../../../core/snapshot/s3-snapshot.js';
import { copyVersion, listVersions, readCurrent, versionDir } from '../../../core/snapshot/volume.js';
import { homePaths, VECTORS_BUCKET } from '../../../local/home.js';
import '../../harness/env.js';
import { awsSettings, createBucket } from '../../support/aws.js';
import { lambdaFixtures, type LambdaFixtures } from '../../support/lambda-fixtures.js';
import { cli } from '../../support/local-cli.js';
import { MIGRATE_SPEC } from './spec.js';

const env = inject('testEnv');
let store: S3Store;
let fx: LambdaFixtures;
let bucket: string;
const awsEnv = () => ({
  AWS_ENDPOINT_URL: env.aws.endpoint,
  AWS_REGION: env.aws.region,
  AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
  AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
});
const run = (args: string[], extra: Record<string, string> = {}) =>
  cli(['migrate', ...args], { env: { ...awsEnv(), ...extra }, deadlineMs: 900_000 }).done;
const newHome = () => {
  const home = mkdtempSync(join(tmpdir(), 'migrate-home-'));
  mkdirSync(home, { recursive: true });
  return home;
};
const pointed = { lines: 'snapshot-lines-20260714_120000', words: 'snapshot-words-20260714_120500' } as const;

beforeAll(async () => {
  store = new S3Store(awsSettings(env));
  fx = lambdaFixtures(MIGRATE_SPEC);
  bucket = await createBucket(store, 'lambda-vectors');
  await fx.upload(store, bucket, 'old/');
}, 1_800_000);

/** The live version of `c` opened with this project's Chroma: every record, by id. */
async function live(home: string, c: Collection) {
  const root = homePaths(home).volume;
  const version = (await readCurrent(root, c))!;
  const copy = mkdtempSync(join(tmpdir(), 'live-'));
  await copyVersion(versionDir(root, c, version), copy); // digests checked
  const server = await startChromaServer({ path: copy });
  try {
    const s = new ChromaVectorStore(server.url);
    const n = await s.count(c);
    const got = await s.get(c, { include: ['embeddings', 'documents', 'metadatas'], limit: n + 1 });
    return { version, count: n, got };
  } finally {
    await server.stop();
  }
}

describe('embedctl migrate (local home, from moto S3, fixtures by Python chromadb 1.5.x)', () => {
  const home = newHome();

  it('--dry-run says what it would do and writes nothing', async () => {
    const r = await run(['--from', `s3://${bucket}/old`, '--home', home, '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('lines: would migrate tar snapshot 20260714_120000');
    expect(r.stdout).toContain('words: would migrate legacy snapshot 20260714_120500');
    expect(await listVersions(homePaths(home).volume, 'lines')).toEqual([]);
  });

  it('killed after installing lines, then rerun: resumes, and the live snapshot is exactly the source', async () => {
    const crashed = await run(['--from', `s3://${bucket}/old`, '--home', home], {
      EMBEDCTL_CRASH_AT: 'migrate-installed',
    });
    expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
    const root = homePaths(home).volume;
    expect(await readCurrent(root, 'lines')).toBeUndefined();
    expect(await listVersions(root, 'lines')).toHaveLength(1);

    // The killed run's file lease stays held until it expires (60 s): the rerun waits for it.
    const r = await run(['--from', `s3://${bucket}/old/`, '--home', home, '--lease-wait', '120']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/lines: resumed 5153 records .* version 20260714_120000 → CURRENT/);
    expect(r.stdout).toMatch(/words: migrated 5153 records .* version 20260714_120500 → CURRENT/);

    for (const c of ['lines', 'words'] as const) {
      const want = fx.expected(pointed[c]);
      expect(want.ids.length).toBeGreaterThanOrEqual(5000);
      const { version, count, got } = await live(home, c);
      expect(await listVersions(root, c)).toEqual([version]); // the crashed install was reused, not duplicated
      expect(count).toBe(want.ids.length);
      expect([...got.ids].sort()).toEqual(want.ids);
      const at = new Map(got.ids.map((id, i) => [id, i]));
      let arrays = 0;
      want.ids.forEach((id, k) => {
        const i = at.get(id)!;
        expect(got.documents[i]).toBe(want.documents[k]);
        const m = want.metadatas[k] as Record<string, never>;
        expect(got.metadatas[i]).toEqual(migrateMetadata(m));
        if (Array.isArray(m?.valid_labels_array)) {
          arrays++;
          expect(got.metadatas[i]!.valid_labels).toBe((m.valid_labels_array as string[]).join(','));
        }
        const e = got.embeddings![i]!;
        const w = want.embeddings[k]!;
        expect(e.length).toBe(1536);
        if (!e.every((x, j) => Object.is(x, w[j]))) expect.fail(`${c} ${id}: vector differs`);
      });
      expect(arrays).toBeGreaterThan(0);
      // The home's object-store mirror names the live version.
      const dirStore = new DirectoryObjectStore(homePaths(home).objects);
      expect(await readPointer(dirStore, VECTORS_BUCKET, c)).toBe(version);
    }
  }, 1_500_000);

  it('is idempotent: a second run changes nothing', async () => {
    const root = homePaths(home).volume;
    const before = { lines: await listVersions(root, 'lines'), words: await listVersions(root, 'words') };
    const r = await run(['--from', `s3://${bucket}/old`, '--home', home, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { collection: string; action: string; mirrored: boolean }[];
    expect(out.map((o) => [o.collection, o.action, o.mirrored])).toEqual([
      ['lines', 'mirror-only', false],
      ['words', 'mirror-only', false],
    ]);
    expect(await listVersions(root, 'lines')).toEqual(before.lines);
    expect(await listVersions(root, 'words')).toEqual(before.words);
  }, 300_000);
});

/** A gzip tarball written by Python's tarfile (any entry type): [name, type, content-or-target]. */
function tarball(entries: [string, 'file' | 'symlink' | 'dir', string?][]): Buffer {
  const out = join(mkdtempSync(join(tmpdir(), 'bad-')), 'a.tar.gz');
  const py = `
import io, json, sys, tarfile
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE}
with tarfile.open(sys.argv[1], 'w:gz') as t:
    for name, kind, extra in json.loads(sys.argv[2]):
        i = tarfile.TarInfo(name); i.type = types[kind]; data = None
        if kind == 'file': data = (extra or '').encode(); i.size = len(data)
        if kind == 'symlink': i.linkname = extra
        t.addfile(i, io.BytesIO(data) if data is not None else None)
`;
  execFileSync('python3', ['-c', py, out, JSON.stringify(entries.map(([n, k, e]) => [n, k, e ?? null]))]);
  return readFileSync(out);
}

describe('bad archives each fail with a reason and change nothing', () => {
  const md5 = (b: Buffer) => `md5:${createHash('md5').update(b).digest('hex')}`;
  const good = () =>
    readFileSync(
      join(fx.dir, 'bucket', 'lines', 'snapshot', 'timestamped', '20260714_120000', 'snapshot.tar.gz'),
    );
  const cases: [string, () => { archive: Buffer; hash?: string; args?: string[] }, RegExp][] = [
    [
      'traversal',
      () => ({ archive: tarball([['../evil', 'file', 'x']]) }),
      /leaves the extraction directory/,
    ],
    [
      'link',
      () => ({ archive: tarball([['chroma.sqlite3', 'symlink', '/etc/passwd']]) }),
      /is a SymbolicLink/,
    ],
    [
      'truncated',
      () => ({ archive: good().subarray(0, 200_000) }),
      /truncat|unexpected end|TAR_BAD_ARCHIVE|zlib/i,
    ],
    ['wrong hash', () => ({ archive: good(), hash: `md5:${'0'.repeat(32)}` }), /hash mismatch/],
    [
      'oversized',
      () => ({ archive: good(), args: ['--max-archive-bytes', '100000'] }),
      /over the 100000-byte limit/,
    ],
  ];
  for (const [name, make, reason] of cases) {
    it(name, async () => {
      const { archive, hash, args = [] } = make();
      const prefix = `bad-${name.replace(' ', '-')}/`;
      const base = `${prefix}lines/snapshot/timestamped/20260714_120000/`;
      await store.put(bucket, `${prefix}lines/snapshot/latest-pointer.txt`, '20260714_120000');
      await store.put(bucket, `${base}snapshot.tar.gz`, archive);
      await store.put(bucket, `${base}.snapshot_hash`, hash ?? md5(archive));
      const home = newHome();
      const r = await run(['lines', '--from', `s3://${bucket}/${prefix}`, '--home', home, ...args]);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toMatch(reason);
      const root = homePaths(home).volume;
      expect(await readCurrent(root, 'lines')).toBeUndefined();
      expect(
        existsSync(join(root, 'lines', 'versions')) ? readdirSync(join(root, 'lines', 'versions')) : [],
      ).toEqual([]);
    });
  }

  it('usage errors exit 2', async () => {
    const home = newHome();
    writeFileSync(join(home, '.keep'), '');
    expect((await run(['--from', 'http://example.com/x', '--home', home])).code).toBe(2);
    expect((await run(['pages', '--from', `s3://${bucket}/old`, '--home', home])).code).toBe(2);
    expect((await run(['--home', home])).code).toBe(2);
  });
});
