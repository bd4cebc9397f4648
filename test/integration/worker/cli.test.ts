import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { COMPACTION_RUN_SK } from '../../../core/contracts/compaction-run.js';
import { newEmbeddingJob } from '../../../core/contracts/embedding-job.js';
import { EmbeddingJobClient } from '../../../core/kube/embedding-jobs.js';
import { generateReceipt, putReceipt } from '../../../core/sample/index.js';
import '../../harness/env.js';
import { applyCrd, createNamespace, kubeFor } from '../controller/helpers.js';
import { awsFixtures, DIMS, workerProcessEnv, workItem } from './helpers.js';

const env = inject('testEnv');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
let fx: Awaited<ReturnType<typeof awsFixtures>>;

beforeAll(async () => {
  fx = await awsFixtures(env, 'cli');
});

function workerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...workerProcessEnv(env, fx, {
      tmpDir: tmpdir(),
      openaiBaseUrl: env.embeddings.baseUrl,
      dimensions: DIMS,
      chromaRoot: join(tmpdir(), 'no-volume-here'),
    }),
    ...extra,
  };
}

function startWorker(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts', 'worker', ...args], {
    cwd: ROOT,
    env: workerEnv(extraEnv),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>(
    (resolve) => child.once('exit', (code, signal) => resolve({ code, signal, output })),
  );
  return { child, exited };
}

describe('embedctl worker --jobs (Kubernetes)', () => {
  it('reads the EmbeddingJobs and patches status.report/result per item; a rerun of the same worker Job skips them', async () => {
    const kube = await kubeFor(env);
    await applyCrd(kube);
    const ns = await createNamespace(kube, 'worker');
    const ejs = new EmbeddingJobClient(kube);
    const good = await putReceipt(fx.store, fx.artifacts, generateReceipt(31337));
    const bad = await putReceipt(fx.store, fx.artifacts, generateReceipt(31338, { defect: 'bad-value' }));
    const missing = {
      ...(await putReceipt(fx.store, fx.artifacts, generateReceipt(31339))),
      lines_key: 'receipts/missing/lines.ndjson',
    };
    const names: string[] = [];
    for (const m of [good, bad, missing]) {
      const ej = newEmbeddingJob(m, ns);
      await ejs.create(ej);
      names.push(ej.metadata.name);
    }
    const args = ['--jobs', names.join(','), '--namespace', ns, '--kubeconfig', env.kubeconfigPath];
    const run = await startWorker(args, { WORKER_JOB_NAME: 'ejw-test-1' }).exited;
    expect(run.code, run.output).toBe(0);
    const [g, b, m] = await Promise.all(names.map((n) => ejs.get(ns, n)));
    expect(g!.status?.report).toMatchObject({ workerJob: 'ejw-test-1', outcome: 'Succeeded' });
    expect(g!.status?.result).toMatchObject({
      runId: expect.any(String),
      rows: expect.any(Number),
      words: expect.any(Number),
    });
    expect(g!.status?.result?.merchantReason).toBe('no lines snapshot yet');
    expect(g!.status?.phase).toBeUndefined(); // the worker writes report/result only
    expect(b!.status?.report).toMatchObject({
      outcome: 'Failed',
      reason: 'BadInput',
      message: expect.stringMatching(/^words\.ndjson, row \d+, field confidence/),
    });
    expect(m!.status?.report).toMatchObject({ outcome: 'Failed', reason: 'SourceMissing' });

    const again = await startWorker(args, { WORKER_JOB_NAME: 'ejw-test-1', LOG_LEVEL: 'info' }).exited;
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain('already reported by this worker Job');
    expect((await ejs.get(ns, names[0]!))!.status?.report?.reportedAt).toBe(g!.status?.report?.reportedAt);
    kube.close();
  });

  it('exits 2 on bad arguments', async () => {
    const run = await startWorker(['--namespace', 'x']).exited;
    expect(run.code).toBe(2);
  });
});

describe('embedctl worker killed mid-batch and rerun', () => {
  it('leaves no duplicate CompactionRun and identical deltas', async () => {
    const receipts = Array.from({ length: 8 }, (_, i) => generateReceipt(4200 + i, { items: 8 }));
    const jobs = [];
    for (const [i, r] of receipts.entries()) {
      jobs.push(workItem(await putReceipt(fx.store, fx.artifacts, r), `ej-kill-${i}`, 'ejw-kill'));
    }
    const dir = await mkdtemp(join(tmpdir(), 'worker-kill-'));
    const jobsFile = join(dir, 'jobs.json');
    await writeFile(jobsFile, JSON.stringify(jobs));
    const first = join(dir, 'first.ndjson');
    const { child, exited } = startWorker([
      '--jobs-file',
      jobsFile,
      '--report-file',
      first,
      '--job-concurrency',
      '1',
    ]);
    const reportsIn = async (f: string) =>
      (await readFile(f, 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { name?: string; outcome?: string; result?: { runId: string } });
    const deadline = Date.now() + 60_000;
    while ((await reportsIn(first)).length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    const killed = await exited;
    expect(killed.signal).toBe('SIGKILL');
    const before = await reportsIn(first);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before.length).toBeLessThan(jobs.length);
    const deltaHashes = async () => {
      const out = new Map<string, string>();
      for (const c of ['lines', 'words']) {
        for (const o of await fx.store.list(fx.vectors, `${c}/delta/`)) {
          out.set(
            o.key,
            createHash('sha256')
              .update(await fx.store.getBuffer(fx.vectors, o.key))
              .digest('hex'),
          );
        }
      }
      return out;
    };
    const hashesBefore = await deltaHashes();

    const second = join(dir, 'second.ndjson');
    const rerun = await startWorker(['--jobs-file', jobsFile, '--report-file', second]).exited;
    expect(rerun.code, rerun.output).toBe(0);
    const after = (await reportsIn(second)).filter((r) => r.name);
    expect(after).toHaveLength(jobs.length);
    expect(after.every((r) => r.outcome === 'Succeeded')).toBe(true);
    for (const b of before.filter((r) => r.name)) {
      expect(after.find((a) => a.name === b.name)!.result!.runId).toBe(b.result!.runId);
    }
    const hashesAfter = await deltaHashes();
    for (const [key, sha] of hashesBefore) expect(hashesAfter.get(key), key).toBe(sha);
    for (const r of receipts) {
      const runs = (
        await fx.ledger.query(`IMAGE#${r.imageId}`, `RECEIPT#${String(r.receiptId).padStart(5, '0')}#`)
      ).filter((i) => COMPACTION_RUN_SK.test(i.SK));
      expect(runs).toHaveLength(1);
      const run = runs[0]!;
      for (const c of ['lines', 'words'])
        expect(hashesAfter.get(run[`${c}_delta_key`] as string)).toBe(run[`${c}_sha256`]);
    }
  });
});
