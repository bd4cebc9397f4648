// A hung compactor is noticed (issue 17 item 6): its Chroma server is SIGSTOPped mid-batch. /healthz fails once the
// batch has not moved for COMPACTOR_STALL_SECONDS, the test restarts the process as the kubelet's liveness probe
// would, and the batch completes after, exactly, with nothing dead-lettered. Real `embedctl compactor`, moto, Chroma.
import { createServer } from 'node:net';
import { readFile } from 'node:fs/promises';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { runCollection, type CompactionRunItem } from '../../../core/contracts/compaction-run.js';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import {
  childEnv,
  compactorFor,
  dlqMessages,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  queueDepth,
  serversUnder,
  spawnTsx,
  writeRun,
} from './fixtures.js';

const env = inject('testEnv');

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function probe(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** The Chroma server of the lines working copy (its --path is the lines working directory). */
async function linesServer(dir: string): Promise<number | undefined> {
  for (const pid of await serversUnder(dir)) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes('/lines/work')) return pid;
  }
  return undefined;
}

describe.concurrent('a stalled compactor', () => {
  it('SIGSTOPped Chroma mid-batch with a 3 s request timeout: the batch fails, the lane restarts its server, the batch completes', async () => {
    const w = await makeWorld(env, 'stall-timeout');
    const receipts = [makeReceipt(710), makeReceipt(711)];
    const runs: CompactionRunItem[] = [];
    for (const r of receipts) runs.push(await writeRun(w, r));
    const compactor = compactorFor(w, 'timeouts', { chromaTimeoutMs: 3000, exitWhenIdleMs: 60_000 });
    const stop = new AbortController();
    const running = compactor.run(stop.signal);
    try {
      await until('the compactor to be ready', 60_000, async () => (compactor.isReady() ? true : undefined));
      const pid = await until('the lines Chroma server', 10_000, () => linesServer(w.dir));
      process.kill(pid, 'SIGSTOP');
      const t0 = Date.now();
      await pumpStream(w);
      await until('both runs COMPLETED in lines', 90_000, async () => {
        for (const run of runs) {
          const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
          if (runCollection(item, 'lines')?.state !== 'COMPLETED') return undefined;
        }
        return true;
      });
      console.log(`batch completed ${Date.now() - t0} ms after Chroma was stopped (request timeout 3 s)`);
      expect((await serversUnder(w.dir)).includes(pid)).toBe(false); // the stopped server was killed, not reused
    } finally {
      stop.abort();
      await running;
    }
    const live = await dumpLive(w.root, 'lines', w.dir);
    expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, 'lines').keys()].sort());
    expect(await dlqMessages(w)).toEqual([]);
  }, 180_000);

  it('SIGSTOPped Chroma mid-batch: /healthz fails within the stall bound; after a restart the batch completes', async () => {
    const w = await makeWorld(env, 'stall');
    const receipts = [makeReceipt(700), makeReceipt(701)];
    const runs: CompactionRunItem[] = [];
    for (const r of receipts) runs.push(await writeRun(w, r));
    const port = await freePort();
    const stallEnv = childEnv(w, env, {
      METRICS_PORT: String(port),
      COMPACTOR_STALL_SECONDS: '3',
      COMPACTOR_EXIT_WHEN_IDLE_MS: '60000',
    });
    const first = spawnTsx('cli/main.ts', ['compactor'], stallEnv);
    let stopped: number | undefined;
    try {
      await until('the compactor to be ready', 60_000, async () =>
        (await probe(port, '/readyz')) === 200 ? true : undefined,
      );
      stopped = await until('the lines Chroma server', 10_000, () => linesServer(w.dir));
      process.kill(stopped, 'SIGSTOP'); // the next Chroma call of the lines lane hangs
      await pumpStream(w);
      const t0 = Date.now();
      await until('/healthz to fail', 30_000, async () =>
        (await probe(port, '/healthz')) === 503 ? true : undefined,
      );
      const noticed = Date.now() - t0;
      console.log(`stall noticed ${noticed} ms after the messages were queued (bound: 3 s of no progress)`);
      expect(await probe(port, '/readyz')).toBe(200); // ready (lease held) but not alive
      for (const run of runs)
        expect(
          runCollection((await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!, 'lines'),
        ).toMatchObject({
          state: 'PENDING',
        });
    } finally {
      // What the kubelet does on a failed liveness probe: SIGTERM, then SIGKILL after the grace period.
      first.child.kill('SIGTERM');
      const exited = await Promise.race([first.done, new Promise((r) => setTimeout(r, 3000))]);
      if (!exited) first.child.kill('SIGKILL');
      await first.done;
    }
    const second = await spawnTsx(
      'cli/main.ts',
      ['compactor'],
      childEnv(w, env, { COMPACTOR_EXIT_WHEN_IDLE_MS: '8000' }),
    ).done;
    expect(second.code, second.stderr).toBe(0);
    // The stopped server was an orphan of the first process: the second one killed it before reusing the directory.
    expect(await serversUnder(w.dir)).toEqual([]);
    for (const c of COLLECTIONS) {
      const live = await dumpLive(w.root, c, w.dir);
      expect([...live.records.keys()].sort()).toEqual([...expectedUnion(receipts, c).keys()].sort());
      for (const run of runs)
        expect(
          runCollection((await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!, c),
        ).toMatchObject({
          state: 'COMPLETED',
        });
    }
    expect(await queueDepth(w, w.urls.lines)).toBe(0);
    expect(await dlqMessages(w)).toEqual([]);
  }, 180_000);
});
