// Remote vector-store mode (docs/adr/0013-remote-vector-store.md) against the harness's real `chroma run` server, one
// Chroma database per test: worker runs → stream → compactor upserting over HTTP → worker merchant resolution querying
// the same server; exact ids and ledger states; a SIGKILLed compactor retried to the exact state; a writer whose
// token was superseded refused by the fence kept in the collection's metadata before it writes anything.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { RemoteLinesIndexSource } from '../../../core/chroma/remote-lines.js';
import { FENCE_KEYS } from '../../../core/chroma/remote-fence.js';
import { ChromaVectorStore, ensureDatabase } from '../../../core/chroma/store.js';
import { runCollection, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS, type Collection } from '../../../core/contracts/ids.js';
import { decodeDelta } from '../../../core/delta/arrow-delta.js';
import { OpenAIEmbedder } from '../../../core/embedding/openai-embedder.js';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import { FencedLease, LeaseLostError } from '../../../core/lease/lease.js';
import { generateReceipt, putReceipt, type GeneratedReceipt } from '../../../core/sample/index.js';
import { readPointer } from '../../../core/snapshot/s3-snapshot.js';
import { Compactor, type CompactorConfig } from '../../../compactor/compactor.js';
import { RemoteStore, type RemoteChroma } from '../../../compactor/remote.js';
import { processBatch } from '../../../worker/batch.js';
import {
  childEnv,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  silent,
  spawnTsx,
  vec,
  writeRun,
  type Receipt,
  type World,
} from './fixtures.js';
import { memoryReporter, workItem } from '../worker/helpers.js';

const env = inject('testEnv');
const DIMS = 64;
const LEASE = 'embedctl-compactor';

/** A fresh database on the harness's Chroma server: the tests share the server, never a collection. */
async function remoteFor(name: string): Promise<RemoteChroma> {
  const database = `${name}-${randomUUID().slice(0, 8)}`;
  await ensureDatabase(env.chroma.url, { tenant: 'default_tenant', database });
  return { url: env.chroma.url, tenant: 'default_tenant', database, leaseName: LEASE };
}

const storeOf = (r: RemoteChroma) => new ChromaVectorStore(r.url, { tenant: r.tenant, database: r.database });

async function ids(r: RemoteChroma, c: Collection): Promise<string[]> {
  const store = storeOf(r);
  if (!(await store.collectionMetadata(c))) return [];
  const out: string[] = [];
  for (let offset = 0; ; offset += 1000) {
    const page = await store.get(c, { include: [], limit: 1000, offset });
    out.push(...page.ids);
    if (page.ids.length < 1000) break;
  }
  return out.sort();
}

function remoteCompactor(
  w: World,
  remote: RemoteChroma,
  config: Partial<CompactorConfig> = {},
  identity = 'remote-1',
): Compactor {
  return new Compactor({
    queues: w.queues,
    ledger: w.ledger,
    objects: w.objects,
    bucket: w.bucket,
    lease: new FencedLease(new FileLeaseBackend(w.leaseFile), { identity, durationMs: 10_000, log: silent }),
    root: join(w.dir, 'state'),
    workRoot: join(w.dir, `work-${identity}`),
    remote,
    log: silent,
    config: {
      waitSeconds: 1,
      batchWindowMs: 300,
      visibilitySeconds: 5,
      exitWhenIdleMs: 1500,
      ...config,
    },
  });
}

async function expectCompleted(w: World, runs: CompactionRunItem[], vectors?: (c: Collection) => number) {
  for (const run of runs) {
    const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
    for (const c of COLLECTIONS) {
      expect(runCollection(item, c)).toMatchObject({
        state: 'COMPLETED',
        mergedVectors: vectors?.(c) ?? run[`${c}_vectors`],
      });
    }
  }
}

describe('remote vector store', () => {
  it('worker runs → compactor over HTTP → worker merchant resolution on the same server: exact ids, COMPLETED, no volume, no S3 snapshot', async () => {
    const w = await makeWorld(env, 'remote-e2e');
    const remote = await remoteFor('e2e');
    const embedder = new OpenAIEmbedder({
      apiKey: env.embeddings.apiKey,
      baseURL: env.embeddings.baseUrl,
      model: 'text-embedding-3-small',
      dimensions: DIMS,
    });
    const source = new RemoteLinesIndexSource({ ...remote, log: silent });
    const work = async (receipts: GeneratedReceipt[]) => {
      const items = [];
      for (const r of receipts) items.push(workItem(await putReceipt(w.objects, w.bucket, r)));
      const reporter = memoryReporter();
      const out = await processBatch(
        {
          store: w.objects,
          ledger: w.ledger,
          embedder,
          vectorsBucket: w.bucket,
          linesIndex: source,
          reporter,
          log: silent,
        },
        items,
      );
      expect(out.exitCode).toBe(0);
      return { out, reports: new Map(reporter.reports.map((x) => [x.name, x])), items };
    };

    // 1. Known receipts of merchants 0–2, before anything is on the server: no index yet.
    const seeded: GeneratedReceipt[] = [];
    for (let m = 0; m < 3; m++)
      for (let k = 0; k < 2; k++) seeded.push(generateReceipt(7000 + m * 10 + k, { merchant: m, branch: 0 }));
    const first = await work(seeded);
    for (const rep of first.reports.values())
      expect(rep.result?.merchantReason).toBe('no lines snapshot yet');
    // The places the pipeline learns later (as the original's place rows): the compactor puts them in the metadata.
    for (const r of seeded) {
      await w.ledger.putItem({
        PK: `IMAGE#${r.imageId}`,
        SK: `RECEIPT#${String(r.receiptId).padStart(5, '0')}#PLACE`,
        merchant_name: r.merchant.name,
      });
    }
    await pumpStream(w);

    // 2. The compactor merges every delta into the server's collections.
    const compactor = remoteCompactor(w, remote, { dimensions: DIMS });
    await compactor.run(new AbortController().signal);
    const runs: CompactionRunItem[] = [];
    for (const [i, r] of seeded.entries()) {
      const rep = first.reports.get(first.items[i]!.name)!;
      runs.push((await w.ledger.getRun(r.imageId, r.receiptId, rep.result!.runId))!);
    }
    await expectCompleted(w, runs);
    for (const c of COLLECTIONS) {
      const want: string[] = [];
      for (const run of runs) {
        const key = run[`${c}_delta_key`]!;
        want.push(...decodeDelta(await w.objects.getBuffer(w.bucket, key)).records.map((x) => x.id));
      }
      expect(await ids(remote, c)).toEqual(want.sort());
      const meta = (await storeOf(remote).collectionMetadata(c))!;
      expect(meta[FENCE_KEYS.lease]).toBe(LEASE);
      expect(typeof meta[FENCE_KEYS.version]).toBe('string');
    }
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
    expect(await queueDepth(w, w.urls.words)).toBe(0);
    // No volume and no snapshot: the server's collection is the only copy.
    expect(existsSync(w.root)).toBe(false);
    for (const c of COLLECTIONS) expect(await readPointer(w.objects, w.bucket, c)).toBeUndefined();

    // 3. New receipts of the same branches resolve their merchant against the server (the place names merged above).
    const fresh = [0, 1, 2].map((m) => generateReceipt(7100 + m, { merchant: m, branch: 0 }));
    const second = await work(fresh);
    const committed = (await storeOf(remote).collectionMetadata('lines'))![FENCE_KEYS.version];
    expect(second.out.merchantIndex).toMatchObject({ origin: 'remote', version: committed });
    fresh.forEach((r, i) => {
      const rep = second.reports.get(second.items[i]!.name)!;
      expect(rep.result?.merchant, rep.result?.merchantReason).toBe(r.merchant.name);
      expect(rep.result?.merchantReason).toMatch(/^chroma_/);
    });
  });

  it.concurrent.each(['mid-upsert', 'after-mark'])(
    'a compactor process SIGKILLed at %s and restarted: exactly the union on the server, every run COMPLETED once',
    async (step) => {
      const w = await makeWorld(env, `remote-crash-${step}`);
      const remote = await remoteFor(`crash-${step}`);
      const receipts: Receipt[] = [makeReceipt(61), makeReceipt(62, { lines: 4, words: 3 }), makeReceipt(63)];
      const runs = [];
      for (const r of receipts) runs.push(await writeRun(w, r));
      await pumpStream(w);
      const envOf = (extra: Record<string, string> = {}) =>
        childEnv(w, env, {
          VECTOR_STORE: 'remote',
          CHROMA_URL: remote.url,
          CHROMA_DATABASE: remote.database,
          CHROMA_ROOT: join(w.dir, 'no-volume'),
          ...extra,
        });
      const crashed = await spawnTsx('cli/main.ts', ['compactor'], envOf({ EMBEDCTL_CRASH_AT: step })).done;
      expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
      if (step === 'mid-upsert') {
        // Half a batch reached the server, and no run is COMPLETED: nothing acknowledged what is not all there.
        const partial = (await ids(remote, 'lines')).length + (await ids(remote, 'words')).length;
        expect(partial).toBeGreaterThan(0);
        for (const run of runs) {
          const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
          expect(COLLECTIONS.some((c) => runCollection(item, c)!.state === 'COMPLETED')).toBe(false);
        }
      }
      for (let i = 0; i < 3; i++) {
        const res = await spawnTsx(
          'cli/main.ts',
          ['compactor'],
          envOf({ COMPACTOR_EXIT_WHEN_IDLE_MS: '6000' }),
        ).done;
        expect(res.code, res.stderr).toBe(0);
        if ((await queueDepth(w, w.urls.lines)) + (await queueDepth(w, w.urls.words)) === 0) break;
      }
      for (const c of COLLECTIONS) {
        const want = expectedUnion(receipts, c);
        expect(await ids(remote, c)).toEqual([...want.keys()].sort());
        const got = await storeOf(remote).get(c, {
          ids: [...want.keys()],
          include: ['embeddings', 'documents'],
        });
        got.ids.forEach((id, i) => {
          expect(Array.from(got.embeddings![i]!)).toEqual(Array.from(want.get(id)!.embedding));
          expect(got.documents[i]).toBe(want.get(id)!.document);
        });
      }
      await expectCompleted(w, runs);
      expect(await queueDepth(w, w.urls.lines)).toBe(0);
      expect(await queueDepth(w, w.urls.words)).toBe(0);
      expect(existsSync(join(w.dir, 'no-volume'))).toBe(false);
    },
  );

  it('two compactor processes: a holder paused past its Lease resumes, writes nothing more to the server and exits leaseLost; the successor fenced the collections', async () => {
    const w = await makeWorld(env, 'remote-two');
    const remote = await remoteFor('two');
    const envOf = (pod: string, idleMs: string) =>
      childEnv(w, env, {
        VECTOR_STORE: 'remote',
        CHROMA_URL: remote.url,
        CHROMA_DATABASE: remote.database,
        POD_NAME: pod,
        COMPACTOR_EXIT_WHEN_IDLE_MS: idleMs,
        COMPACTOR_WORK_DIR: join(w.dir, pod),
      });
    const completed = async (run: CompactionRunItem) => {
      const item = await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id);
      return !!item && COLLECTIONS.every((c) => runCollection(item, c)?.state === 'COMPLETED');
    };
    const until = async (what: string, fn: () => Promise<boolean>) => {
      for (const deadline = Date.now() + 90_000; Date.now() < deadline;) {
        if (await fn()) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    const r1 = makeReceipt(80);
    const run1 = await writeRun(w, r1);
    await pumpStream(w);
    const a = spawnTsx('cli/main.ts', ['compactor'], envOf('compactor-a', '120000'));
    const b = { current: undefined as ReturnType<typeof spawnTsx> | undefined };
    try {
      await until('A merged run 1', () => completed(run1));
      const tokenA = (await storeOf(remote).collectionMetadata('lines'))![FENCE_KEYS.token] as number;
      b.current = spawnTsx('cli/main.ts', ['compactor'], envOf('compactor-b', '5000'));
      a.child.kill('SIGSTOP');
      const r2 = makeReceipt(81);
      const run2 = await writeRun(w, r2);
      await pumpStream(w);
      await until('B merged run 2', () => completed(run2));
      const bDone = await b.current.done;
      expect(bDone.code, bDone.stderr).toBe(0);
      const before = { lines: await ids(remote, 'lines'), words: await ids(remote, 'words') };
      a.child.kill('SIGCONT');
      const aDone = await a.done;
      expect(aDone.code, aDone.stderr).toBe(4); // EXIT.leaseLost
      for (const c of COLLECTIONS) {
        expect(await ids(remote, c)).toEqual(before[c]);
        expect(before[c]).toEqual([...expectedUnion([r1, r2], c).keys()].sort());
        const meta = (await storeOf(remote).collectionMetadata(c))!;
        expect(meta[FENCE_KEYS.holder]).toBe('compactor-b');
        expect(meta[FENCE_KEYS.token] as number).toBeGreaterThan(tokenA);
      }
    } finally {
      for (const p of [a, b.current]) {
        if (p && p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGCONT');
          p.child.kill('SIGKILL');
        }
      }
    }
  });

  it('a writer whose token was superseded is refused before its next write; the successor writes; nothing of the stale writer lands', async () => {
    const w = await makeWorld(env, 'remote-fence');
    const remote = await remoteFor('fence');
    const backend = new FileLeaseBackend(w.leaseFile);
    // A believes it still holds its lease (its clock stands still and it never renews: a paused or clock-skewed
    // process), the case only the fence on the server catches.
    const frozen = Date.now();
    const leaseA = new FencedLease(backend, {
      identity: 'stale-a',
      durationMs: 1000,
      renewEveryMs: 3_600_000,
      now: () => frozen,
      log: silent,
    });
    const a = new RemoteStore(remote, leaseA, silent, 10_000);
    const tokenA = await leaseA.acquire();
    expect(await a.claim()).toBe(tokenA);
    const targetA = a.target('lines');
    await targetA.openLive();
    const r = makeReceipt(90, { dim: DIMS });
    await targetA.add(r.lines.slice(0, 1));

    // B takes the lease the ordinary way (A's record stood still for a whole duration) and claims the collections.
    const leaseB = new FencedLease(backend, { identity: 'b', durationMs: 1000, log: silent });
    const tokenB = await leaseB.acquire(AbortSignal.timeout(20_000));
    expect(tokenB).toBeGreaterThan(tokenA);
    const b = new RemoteStore(remote, leaseB, silent, 10_000);
    await b.claim();
    const targetB = b.target('lines');
    await targetB.openLive();

    // A's next write (add, delete, metadata update) and its commit are refused; the collection is untouched by them.
    const stale = { id: r.lines[1]!.id, document: 'stale', metadata: {}, embedding: vec(1, DIMS) };
    await expect(targetA.add([stale])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(targetA.delete([r.lines[0]!.id])).rejects.toBeInstanceOf(LeaseLostError);
    await expect(
      targetA.updateMetadata([{ id: r.lines[0]!.id, metadata: { merchant_name: 'stale' } }]),
    ).rejects.toBeInstanceOf(LeaseLostError);
    await expect(a.commit('lines')).rejects.toBeInstanceOf(LeaseLostError);
    expect(await ids(remote, 'lines')).toEqual([r.lines[0]!.id]);
    const meta = (await storeOf(remote).collectionMetadata('lines'))!;
    expect(meta[FENCE_KEYS.token]).toBe(tokenB);
    expect(meta[FENCE_KEYS.holder]).toBe('b');

    // B writes and commits.
    await targetB.add(r.lines.slice(1));
    const version = await b.commit('lines');
    expect(await ids(remote, 'lines')).toEqual(r.lines.map((x) => x.id).sort());
    expect((await storeOf(remote).collectionMetadata('lines'))![FENCE_KEYS.version]).toBe(version);

    // A compactor under another Lease on the same database is a configuration error, not a takeover.
    const other = new RemoteStore({ ...remote, leaseName: 'another-deployment' }, leaseB, silent, 10_000);
    await expect(other.claim('lines')).rejects.toThrow(/fenced by Lease embedctl-compactor/);
    await targetA.stop();
    await targetB.stop();
    await leaseB.release();
  });
});
