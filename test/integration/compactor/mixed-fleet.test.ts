// Issue 15 item 3 (mixed fleet): during a cut-over the original system's workers still write Chroma-directory deltas
// (tar.gz or file by file) and CompactionRuns of the original's shape; the compactor merges them with this project's
// Arrow deltas, against moto and real Chroma. Bad archives FAIL only their own run, with the reason, and change
// nothing.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS, parseVectorId, receiptPrefix, type Collection } from '../../../core/contracts/ids.js';
import { lambdaFixtures, type DeltaSpec, type LambdaFixtures } from '../../support/lambda-fixtures.js';
import {
  originalRunItem,
  tarGzOf,
  uploadOriginalDelta,
  writeChromaDir,
  type OriginalLayout,
} from '../../support/original-delta.js';
import { pythonTarGz, type TarEntry } from '../../support/tar-fixtures.js';
import {
  compactorFor,
  DIM,
  dlqMessages,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  serversUnder,
  writeRun,
  type Receipt,
  type World,
} from './fixtures.js';

const env = inject('testEnv');

interface Written {
  runId: string;
  receipt: Receipt;
}

/** What a worker of the original did: each collection's Chroma directory uploaded in a layout, then the run row. */
async function writeOriginalRun(
  w: World,
  r: Receipt,
  layout: OriginalLayout,
  opts: {
    tarStyle?: 'dot' | 'flat';
    /** Upload this archive instead of the collection's real delta (tar.gz layouts). */
    replace?: Partial<Record<Collection, Buffer | 'none'>>;
  } = {},
): Promise<Written> {
  const runId = crypto.randomUUID();
  const prefixes = {} as Record<Collection, string>;
  for (const c of COLLECTIONS) {
    const replacement = opts.replace?.[c];
    if (replacement !== undefined) {
      prefixes[c] = `${c}/delta/${runId}`;
      if (replacement !== 'none') await w.objects.put(w.bucket, `${prefixes[c]}/delta.tar.gz`, replacement);
      continue;
    }
    const dir = await mkdtemp(join(w.dir, `orig-${c}-`));
    await writeChromaDir(dir, c, r[c]);
    prefixes[c] = await uploadOriginalDelta(w.objects, w.bucket, dir, {
      collection: c,
      runId,
      layout,
      ...(opts.tarStyle ? { tarStyle: opts.tarStyle } : {}),
    });
  }
  await w.ledger.putItem(
    originalRunItem({
      runId,
      imageId: r.imageId,
      receiptId: r.receiptId,
      linesPrefix: prefixes.lines,
      wordsPrefix: prefixes.words,
    }),
  );
  return { runId, receipt: r };
}

/**
 * The COMPACTION_RUN INSERT message the original's stream processor sent for a run (b2bf26a26: Python `json.dumps`,
 * prefixes with their trailing slash, microsecond `+00:00` time) with its attributes.
 */
function originalRunMessage(x: Written, c: Collection): { body: string; attributes: Record<string, string> } {
  const { imageId, receiptId } = x.receipt;
  const p = (k: Collection) => `${k}/delta/${x.runId}/`;
  return {
    body: `{"source": "dynamodb_stream", "entity_type": "COMPACTION_RUN", "entity_data": {"run_id": "${x.runId}", "image_id": "${imageId}", "receipt_id": ${receiptId}, "lines_delta_prefix": "${p('lines')}", "words_delta_prefix": "${p('words')}", "delta_s3_prefix": "${p(c)}"}, "changes": {}, "event_name": "INSERT", "timestamp": "${new Date().toISOString().replace('Z', '123+00:00')}", "stream_record_id": "49613307196283412617265716273381935827369482163118292994", "aws_region": "us-east-1"}`,
    attributes: {
      source: 'dynamodb_stream',
      entity_type: 'COMPACTION_RUN',
      event_name: 'INSERT',
      collection: c,
    },
  };
}

async function stateOf(w: World, x: Written, c: Collection) {
  const item = await w.ledger.getRun(x.receipt.imageId, x.receipt.receiptId, x.runId);
  return runCollection(item!, c);
}

/** The live collection holds exactly `want`'s ids, with equal documents and float32-equal vectors. */
async function expectLive(w: World, c: Collection, want: Receipt[]): Promise<void> {
  const live = await dumpLive(w.root, c, w.dir);
  const expected = expectedUnion(want, c);
  expect([...live.records.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [id, rec] of expected) {
    const got = live.records.get(id)!;
    expect(got.document, id).toBe(rec.document);
    expect(Float32Array.from(got.embedding), id).toEqual(rec.embedding);
    expect(got.metadata.text, id).toBe(rec.metadata.text);
  }
}

describe('mixed fleet: Chroma-directory deltas of the original system next to Arrow deltas', () => {
  it("one batch of Arrow, tar.gz (both prefix forms, both member styles) and per-file deltas compacts to exact counts; one run announced by the original's own message", async () => {
    const w = await makeWorld(env, 'mixed');
    const arrow = [makeReceipt(1), makeReceipt(2, { lines: 4, words: 3 })];
    for (const r of arrow) await writeRun(w, r);
    const legacy = [
      await writeOriginalRun(w, makeReceipt(3), 'tar.gz'),
      await writeOriginalRun(w, makeReceipt(4, { lines: 5, words: 3 }), 'tar.gz-slash', { tarStyle: 'flat' }),
      await writeOriginalRun(w, makeReceipt(5, { lines: 2, words: 4 }), 'files'),
    ];
    await pumpStream(w);
    // One more run announced only by the original's own stream processor: its Sep 2025 bodies, byte for byte.
    const late = await writeOriginalRun(w, makeReceipt(6), 'tar.gz-slash');
    for (const c of COLLECTIONS) await w.queues[c].send([originalRunMessage(late, c)]);
    legacy.push(late);
    await compactorFor(w, 'c1').run(new AbortController().signal);

    for (const x of legacy)
      for (const c of COLLECTIONS)
        expect(await stateOf(w, x, c), `${x.runId} ${c}`).toMatchObject({
          state: 'COMPLETED',
          mergedVectors: x.receipt[c].length,
        });
    const all = [...arrow, ...legacy.map((x) => x.receipt)];
    await expectLive(w, 'lines', all); // 3 + 4 + 3 + 5 + 2 + 3 = 20
    await expectLive(w, 'words', all);
    expect((await dumpLive(w.root, 'lines', w.dir)).records.size).toBe(20);
    expect(await dlqMessages(w)).toEqual([]);
    expect(await serversUnder(w.dir)).toEqual([]);
    expect(readdirSync(join(w.dir, 'work-c1', 'lines', 'deltas'))).toEqual([]);
  });

  it('bad archives (traversal, symlink, hardlink, device, truncated, oversized, no collection, missing) FAIL their run with the reason and change nothing', async () => {
    const w = await makeWorld(env, 'mixed-bad');
    const tgz = (entries: TarEntry[]) => readFileSync(pythonTarGz(entries));
    const escape = join(w.dir, 'escaped.txt');
    const realDir = await mkdtemp(join(w.dir, 'real-'));
    await writeChromaDir(realDir, 'lines', makeReceipt(99).lines);
    const real = await tarGzOf(realDir);
    const wordsOnlyDir = await mkdtemp(join(w.dir, 'wordsonly-'));
    await writeChromaDir(wordsOnlyDir, 'words', makeReceipt(98).words);
    const bad: Record<string, { lines: Buffer | 'none'; reason: RegExp }> = {
      traversal: {
        lines: tgz([['../../../escaped.txt', 'file', 'pwned']]),
        reason:
          /DeltaCorrupt: archive .* refused: "\.\.\/\.\.\/\.\.\/escaped\.txt" leaves the extraction directory/,
      },
      symlink: {
        lines: tgz([
          ['.', 'dir'],
          ['./chroma.sqlite3', 'symlink', '/etc/passwd'],
        ]),
        reason: /DeltaCorrupt: archive .* refused: "\.\/chroma\.sqlite3" is a SymbolicLink/,
      },
      hardlink: {
        lines: tgz([['chroma.sqlite3', 'hardlink', '/etc/passwd']]),
        reason: /DeltaCorrupt: archive .* refused: "chroma\.sqlite3" is a Link/,
      },
      device: {
        lines: tgz([['chroma.sqlite3', 'chr']]),
        reason: /DeltaCorrupt: archive .* refused: "chroma\.sqlite3" is a CharacterDevice/,
      },
      truncated: {
        lines: real.subarray(0, real.length >> 1),
        reason: /DeltaCorrupt: archive .* refused: not a readable tar\.gz/,
      },
      oversized: {
        lines: tgz([['chroma.sqlite3', 'zeros', String(9 * 2 ** 20)]]),
        reason: /DeltaCorrupt: archive .* refused: more than 8388608 bytes unpacked/,
      },
      noCollection: {
        lines: await tarGzOf(wordsOnlyDir),
        reason: /DeltaCorrupt: Chroma delta lines\/delta\/.* has no collection "lines"/,
      },
      missing: { lines: 'none', reason: /SourceMissing: .*lines\/delta\/.*\/delta\.tar\.gz/ },
    };
    const good = await writeOriginalRun(w, makeReceipt(10), 'tar.gz');
    const arrow = makeReceipt(11);
    await writeRun(w, arrow);
    const runs: Record<string, Written> = {};
    let seed = 20;
    for (const [name, b] of Object.entries(bad))
      runs[name] = await writeOriginalRun(w, makeReceipt(seed++), 'tar.gz', { replace: { lines: b.lines } });
    await pumpStream(w);
    await compactorFor(w, 'c1', { chromaDeltaMaxBytes: 8 * 2 ** 20 }).run(new AbortController().signal);

    for (const [name, x] of Object.entries(runs)) {
      expect(await stateOf(w, x, 'lines'), name).toMatchObject({
        state: 'FAILED',
        error: expect.stringMatching(bad[name]!.reason),
      });
      expect(await stateOf(w, x, 'words'), name).toMatchObject({ state: 'COMPLETED' }); // its other delta was fine
    }
    expect(await stateOf(w, good, 'lines')).toMatchObject({ state: 'COMPLETED', mergedVectors: 3 });
    // Nothing of a bad lines delta is live; the good runs and every words delta are.
    await expectLive(w, 'lines', [good.receipt, arrow]);
    await expectLive(w, 'words', [good.receipt, arrow, ...Object.values(runs).map((x) => x.receipt)]);
    expect(existsSync(escape)).toBe(false);
    expect(await dlqMessages(w)).toEqual([]); // a bad delta FAILs its run; its message is done, not dead-lettered
    expect(await serversUnder(w.dir)).toEqual([]);
    expect(readdirSync(join(w.dir, 'work-c1', 'lines', 'deltas'))).toEqual([]);
  });
});

/** Deltas written by the original's own library, read from their files (docs/adr/0014, docs/adr/0015). */
describe("deltas written by Python chromadb 1.5.9, the original system's own library", () => {
  const specs: DeltaSpec[] = [
    { collection: 'lines', count: 7, layout: 'tar', run_id: '0f6b2c1d-3e4a-4b5c-8d6e-7f8091a2b3c4' },
    {
      collection: 'words',
      count: 6,
      layout: 'files',
      run_id: '1a7c3d2e-4f5b-4c6d-9e7f-8091a2b3c4d5',
      trailing_slash: true,
      era: 'A',
    },
  ];
  let fx: LambdaFixtures;
  beforeAll(() => {
    fx = lambdaFixtures({ seed: 15, dim: DIM, deltas: specs });
  }, 600_000);

  it('merge next to an Arrow delta: exact counts, equal documents, float32-equal vectors, label arrays joined', async () => {
    const w = await makeWorld(env, 'mixed-py');
    await fx.upload(w.objects, w.bucket);
    const arrow = makeReceipt(1);
    await writeRun(w, arrow);
    type Want = { document: string | null; embedding: Float32Array };
    const want: Record<Collection, Map<string, Want>> = {
      lines: new Map(arrow.lines.map((r) => [r.id, r])),
      words: new Map(arrow.words.map((r) => [r.id, r])),
    };
    const runs: Written[] = [];
    let seed = 40;
    for (const d of fx.manifest.deltas) {
      const exp = fx.expected(d.name);
      const p = parseVectorId(exp.ids[0]!)!;
      // A delta is one receipt's vectors: the run row names that receipt.
      expect(exp.ids.every((id) => id.startsWith(`${receiptPrefix(p.imageId, p.receiptId)}#`))).toBe(true);
      exp.ids.forEach((id, i) =>
        want[d.collection].set(id, { document: exp.documents[i]!, embedding: exp.embeddings[i]! }),
      );
      // The run's other collection: a delta of the same receipt (this project's Chroma, the original's shape).
      const other: Collection = d.collection === 'lines' ? 'words' : 'lines';
      const receipt = makeReceipt(seed++, { imageId: p.imageId, receiptId: p.receiptId });
      for (const r of receipt[other]) want[other].set(r.id, r);
      const dir = await mkdtemp(join(w.dir, `other-${other}-`));
      await writeChromaDir(dir, other, receipt[other]);
      const otherPrefix = await uploadOriginalDelta(w.objects, w.bucket, dir, {
        collection: other,
        runId: d.run_id,
        layout: 'tar.gz',
      });
      const prefixes = { [d.collection]: d.prefix, [other]: otherPrefix } as Record<Collection, string>;
      await w.ledger.putItem(
        originalRunItem({
          runId: d.run_id,
          imageId: p.imageId,
          receiptId: p.receiptId,
          linesPrefix: prefixes.lines,
          wordsPrefix: prefixes.words,
        }),
      );
      const python = exp.ids.map((id) => ({ id })) as Receipt['lines'];
      runs.push({ runId: d.run_id, receipt: { ...receipt, [d.collection]: python } });
    }
    await pumpStream(w);
    await compactorFor(w, 'c1').run(new AbortController().signal);

    for (const x of runs)
      for (const c of COLLECTIONS)
        expect(await stateOf(w, x, c), `${x.runId} ${c}`).toMatchObject({
          state: 'COMPLETED',
          mergedVectors: x.receipt[c].length,
        });
    for (const c of COLLECTIONS) {
      const live = await dumpLive(w.root, c, w.dir);
      expect([...live.records.keys()].sort()).toEqual([...want[c].keys()].sort());
      for (const [id, rec] of want[c]) {
        expect(live.records.get(id)!.document, id).toBe(rec.document);
        expect(Float32Array.from(live.records.get(id)!.embedding), id).toEqual(rec.embedding);
      }
      // No array metadata reaches our Chroma (it refuses arrays): the original's label arrays arrive comma-joined.
      for (const r of live.records.values())
        expect(Object.values(r.metadata).some((v) => Array.isArray(v))).toBe(false);
    }
    expect(await dlqMessages(w)).toEqual([]);
  });
});
