/**
 * Controller benchmark on the real apiserver (+ Job controller) and SQS server of the test environment.
 * The controller runs in its own process (as in a pod); this process sends messages and watches Jobs appear.
 *
 * - throughput: 1,000 EmbeddingJobs (created on the API) → time until every one is in a worker Job
 *   (`controller.jobs_per_s`); the same from 1,000 queued SQS messages (`controller.sqs_to_job_per_s`);
 * - latency: 1,000 messages sent at 100 messages/s → per message, send → its worker Job seen by a watch
 *   (`controller.msg_to_job_p50_s`, `controller.msg_to_job_p99_s`);
 * - memory: controller RSS with 10,000 EmbeddingJobs in its cache (`controller.rss_mb_10k`).
 *
 * Standalone: `npx tsx bench/controller.ts` (starts and stops the test environment itself).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { embeddingJobName, newEmbeddingJob, type EmbeddingJob } from '../core/contracts/embedding-job.js';
import { EmbedMessage } from '../core/contracts/embed-message.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { Informer } from '../core/kube/informer.js';
import type { KubeRest } from '../core/kube/rest.js';
import type { Job, KubeObject } from '../core/kube/types.js';
import { WORKER_SELECTOR } from '../core/contracts/labels.js';
import { parseMembers } from '../controller/worker-job.js';
import type { SqsQueue } from '../core/aws/sqs-queue.js';
import type { TestEnv } from '../test/harness/environment.js';
import { freePort } from '../test/harness/ports.js';
import {
  applyCrd,
  awsSettings,
  createNamespace,
  createQueues,
  kubeFor,
  message,
  sqsClient,
  testConfig,
  waitFor,
} from '../test/integration/controller/helpers.js';
import { percentile } from './stats.js';

type Figures = Record<string, { value: number; unit: string }>;

const REPO = fileURLToPath(new URL('../', import.meta.url));
const FIXTURE_TS = 'test/integration/controller/fixtures/controller-process.ts';

/**
 * The controller the bench spawns, compiled by tsc as the image runs it (`node build/…js`), not under tsx (whose
 * in-memory transpilation and source maps cost ~60 MB of RSS). Only the fixture's import closure is compiled, into
 * `build/.bench-controller/` (inside the repo so `node_modules` resolves), once per bench run.
 * `BENCH_CONTROLLER_TSX=1` spawns it under tsx instead (the old way, for comparison).
 */
function compileController(log: (m: string) => void): string[] {
  if (process.env.BENCH_CONTROLLER_TSX === '1') return ['--import', 'tsx', join(REPO, FIXTURE_TS)];
  const outDir = join(REPO, 'build', '.bench-controller');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const tsconfig = join(outDir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: join(REPO, 'tsconfig.json'),
      compilerOptions: { outDir, rootDir: REPO, sourceMap: false, noEmitOnError: true },
      files: [join(REPO, FIXTURE_TS)],
      include: [],
    }),
  );
  const t0 = performance.now();
  const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], {
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`tsc failed for the controller fixture:\n${tsc.stdout}${tsc.stderr}`);
  log(`compiled the controller with tsc in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return [join(outDir, FIXTURE_TS.replace(/\.ts$/, '.js'))];
}

let controllerArgs: string[] | undefined;

export interface BenchOptions {
  messages?: number;
  ratePerSecond?: number;
  cachedCrs?: number;
  /** Subset of `dispatch`, `sqs`, `latency`, `rss`; default all (or `$BENCH_CONTROLLER_PARTS`). */
  parts?: string[];
  log?: (m: string) => void;
}

export async function benchController(env: TestEnv, opts: BenchOptions = {}): Promise<Figures> {
  const n = opts.messages ?? 1000;
  const rate = opts.ratePerSecond ?? 100;
  const crs = opts.cachedCrs ?? 10_000;
  const log = opts.log ?? ((m: string) => console.log(`[bench:controller] ${m}`));
  // BENCH_CONTROLLER_PARTS=rss,latency,… runs a subset (for iterating on one figure); default: all.
  const parts = new Set(
    (opts.parts ?? process.env.BENCH_CONTROLLER_PARTS?.split(',') ?? PARTS).map((p) => p.trim()),
  );
  controllerArgs = compileController(log);
  const kube = await kubeFor(env);
  await applyCrd(kube);
  const figures: Figures = {};
  try {
    if (parts.has('dispatch')) {
      const dispatch = await measureThroughput(env, kube, n, 'api', log);
      figures['controller.jobs_per_s'] = { value: round(dispatch), unit: 'EmbeddingJobs/s' };
    }
    const raw = rawSqs(env, log);
    if (parts.has('sqs')) {
      const drain = await raw.drain(n);
      const endToEnd = await measureThroughput(env, kube, n, 'sqs', log);
      figures['controller.sqs_to_job_per_s'] = { value: round(endToEnd), unit: 'messages/s' };
      figures['sqs.raw_drain_per_s'] = { value: round(drain), unit: 'messages/s' };
      // ≤ 1; how much of what the SQS server sustains alone the controller keeps (1 = the server is the limit).
      figures['controller.sqs_to_job_vs_raw_drain'] = { value: round(endToEnd / drain, 2), unit: 'ratio' };
    }
    if (parts.has('latency')) {
      // The server alone first, paced: the highest of rate, rate/2, rate/5 at which its own send → receive p99 is
      // ≤ 1 s is a rate it sustains. Then the controller at the target rate and (if lower) at that rate.
      let sustained = rate;
      let rawAt = await raw.latency(n, rate);
      figures['sqs.raw_send_to_receive_p99_s'] = { value: round(rawAt.p99, 3), unit: 's' };
      for (const r of [rate / 2, rate / 5]) {
        if (rawAt.p99 <= 1) break;
        sustained = Math.round(r);
        rawAt = await raw.latency(Math.min(n, sustained * 20), sustained);
      }
      const latency = await measureLatency(env, kube, n, rate, log);
      figures['controller.msg_to_job_p50_s'] = { value: round(latency.p50, 3), unit: 's' };
      figures['controller.msg_to_job_p99_s'] = { value: round(latency.p99, 3), unit: 's' };
      figures['controller.ej_to_job_p50_s'] = { value: round(latency.dispatchP50, 3), unit: 's' };
      figures['controller.ej_to_job_p99_s'] = { value: round(latency.dispatchP99, 3), unit: 's' };
      const atSustained =
        sustained === rate
          ? latency
          : await measureLatency(env, kube, Math.min(n, sustained * 20), sustained, log);
      figures['sqs.sustained_rate_per_s'] = { value: sustained, unit: 'messages/s' };
      figures['sqs.raw_send_to_receive_p99_s_at_sustained'] = { value: round(rawAt.p99, 3), unit: 's' };
      figures['controller.msg_to_job_p99_s_at_sustained'] = { value: round(atSustained.p99, 3), unit: 's' };
      // Message → Job p99 over the server's own send → receive p99 at the same rate, same run (1 = SQS-bound).
      figures['controller.msg_to_job_p99_vs_raw_at_sustained'] = {
        value: round(atSustained.p99 / rawAt.p99, 1),
        unit: 'ratio',
      };
      const slow = await measureLatency(env, kube, Math.min(n, 400), 20, log);
      figures['controller.msg_to_job_p50_s_at_20_per_s'] = { value: round(slow.p50, 3), unit: 's' };
      figures['controller.msg_to_job_p99_s_at_20_per_s'] = { value: round(slow.p99, 3), unit: 's' };
    }
    if (parts.has('rss')) {
      const rss = await measureRss(env, kube, crs, log);
      figures['controller.rss_mb_10k'] = { value: round(rss.rss), unit: 'MB' };
      figures['controller.heap_used_mb_10k'] = { value: round(rss.heapUsed), unit: 'MB' };
    }
    return figures;
  } finally {
    kube.close();
  }
}

const PARTS = ['dispatch', 'sqs', 'latency', 'rss'];

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;

function spawnController(env: TestEnv, id: string, config: object, port: number): ChildProcess {
  const child = spawn(process.execPath, controllerArgs!, {
    env: {
      ...process.env,
      TEST_LOG_LEVEL: 'warn',
      CONTROLLER_TEST_CONFIG: JSON.stringify({
        config: { ...config, identity: id, metricsPort: port },
        kubeconfig: env.kubeconfigPath,
        aws: awsSettings(env),
      }),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = createWriteStream(join(env.tmpDir, `bench-${id}.log`));
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Watches worker Jobs and records, per EmbeddingJob, when its first Job was seen. */
function watchJobs(kube: KubeRest, ns: string, seen: Map<string, number>) {
  return watchFirstSeen<Job>(kube, 'bench-jobs', `/apis/batch/v1/namespaces/${ns}/jobs`, seen, parseMembers, {
    labelSelector: WORKER_SELECTOR,
  });
}

/** Watches EmbeddingJobs and records when each was first seen (the controller stored it: SQS and ingest are behind). */
function watchEmbeddingJobs(kube: KubeRest, ns: string, seen: Map<string, number>) {
  return watchFirstSeen<EmbeddingJob>(
    kube,
    'bench-ejs',
    EmbeddingJobClient.collectionPath(ns),
    seen,
    (ej) => [ej.metadata],
  );
}

function watchFirstSeen<T extends KubeObject>(
  kube: KubeRest,
  name: string,
  path: string,
  seen: Map<string, number>,
  names: (o: T) => { name: string }[],
  opts: { labelSelector?: string } = {},
) {
  const informer = new Informer<T>(kube, { name, path, ...opts, log: pino({ level: 'warn' }) });
  informer.on('add', (o) => {
    const now = performance.now();
    for (const m of names(o)) if (!seen.has(m.name)) seen.set(m.name, now);
  });
  const stop = new AbortController();
  const done = informer.start(stop.signal);
  return {
    ready: informer.waitForSync(),
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

const nameOf = (body: string) => embeddingJobName(EmbedMessage.parse(JSON.parse(body)));

async function sendBatch(env: TestEnv, url: string, bodies: string[]): Promise<void> {
  await sqsClient(env).send(
    new SendMessageBatchCommand({
      QueueUrl: url,
      Entries: bodies.map((b, i) => ({ Id: String(i), MessageBody: b })),
    }),
  );
}

/**
 * Long-pollers of the controller and of the raw SQS baseline (same client settings for both). 16, not the product's
 * default 4: moto answers a ReceiveMessage in 0.2–1.2 s (real SQS: tens of ms), so a poller there moves ≤ 10
 * messages per receive time; at 100 messages/s, 8 pollers gave p99 5.9 s and 16 gave 0.95 s.
 */
const POLLERS = Number(process.env.BENCH_CONTROLLER_POLLERS ?? 16);

function benchConfig(env: TestEnv, ns: string, q: { url: string; dlqUrl: string }) {
  return testConfig(ns, q, env, {
    ingest: { pollers: POLLERS, waitSeconds: 1, visibilitySeconds: 60, maxOutstanding: 20_000 },
    dispatch: { batchSize: 10, batchWindowSeconds: 0.25, maxActivePods: 10_000 },
    status: { concurrency: 16 },
  });
}

/**
 * `api`: n EmbeddingJobs created on the API before the controller starts → dispatch + adoption throughput.
 * `sqs`: n messages queued before it starts → ingest + dispatch throughput, bounded by the SQS server.
 */
async function measureThroughput(
  env: TestEnv,
  kube: KubeRest,
  n: number,
  source: 'api' | 'sqs',
  log: (m: string) => void,
): Promise<number> {
  const ns = await createNamespace(kube, `bench-tp-${source}`);
  const q = await createQueues(env, `bench-tp-${source}`);
  const bodies = Array.from({ length: n }, (_, i) => message(1_000_000 + i));
  if (source === 'api') await createAll(kube, ns, bodies);
  else await Promise.all(chunk(bodies, 10).map((b) => sendBatch(env, q.url, b)));
  const seen = new Map<string, number>();
  const watch = watchJobs(kube, ns, seen);
  await watch.ready;
  const child = spawnController(env, `bench-tp-${source}`, benchConfig(env, ns, q), 0);
  try {
    // Clock starts when the controller is ready to work (its process start is not controller throughput).
    await waitFor(() => child.exitCode === null && seen.size > 0, 60_000, 'the first Job');
    const t0 = performance.now();
    const first = seen.size;
    await waitFor(() => seen.size >= n, 120_000, `${n} EmbeddingJobs in Jobs`);
    const seconds = (performance.now() - t0) / 1000;
    const perS = (n - first) / seconds;
    const what = source === 'api' ? 'EmbeddingJobs on the API' : 'queued SQS messages';
    log(
      `throughput: ${n} ${what} → all in worker Jobs; ${perS.toFixed(1)}/s (${seconds.toFixed(2)} s after the first Job)`,
    );
    return perS;
  } finally {
    await stopChild(child);
    await watch.stop();
  }
}

async function measureLatency(
  env: TestEnv,
  kube: KubeRest,
  n: number,
  rate: number,
  log: (m: string) => void,
): Promise<{ p50: number; p99: number; dispatchP50: number; dispatchP99: number }> {
  const ns = await createNamespace(kube, 'bench-latency');
  const q = await createQueues(env, 'bench-latency');
  const seen = new Map<string, number>();
  const watch = watchJobs(kube, ns, seen);
  const stored = new Map<string, number>();
  const ejWatch = watchEmbeddingJobs(kube, ns, stored);
  await Promise.all([watch.ready, ejWatch.ready]);
  const child = spawnController(env, 'bench-lat', benchConfig(env, ns, q), 0);
  try {
    // Warm up: one message through, so the controller is leading with synced caches.
    const warm = message(2_999_999 - rate);
    await sendBatch(env, q.url, [warm]);
    await waitFor(() => seen.has(nameOf(warm)), 60_000, 'warm-up Job');

    const cpu0 = cpuByRole(env, child.pid);
    const t0 = performance.now();
    const { sentAt, sendSeconds } = await sendPaced(env, q.url, n, rate, 2_000_000 + rate * 10_000);
    await waitFor(() => [...sentAt.keys()].every((k) => seen.has(k)), 120_000, 'every message in a Job');
    const wall = (performance.now() - t0) / 1000;
    log(
      `latency run: CPU of one core over ${wall.toFixed(1)} s: ${cpuDelta(cpu0, cpuByRole(env, child.pid), wall)}`,
    );
    const seconds = (from: Map<string, number>) =>
      [...sentAt.keys()].map((k) => (seen.get(k)! - (from.get(k) ?? NaN)) / 1000).sort((a, b) => a - b);
    const lat = seconds(sentAt);
    const pct = percentile(lat);
    // The controller's own share: its EmbeddingJob seen → its Job seen (dispatch); the rest is SQS + ingest.
    const dispatch = percentile(seconds(stored));
    const toStored = percentile(
      [...sentAt].map(([k, t]) => ((stored.get(k) ?? NaN) - t) / 1000).sort((a, b) => a - b),
    );
    log(
      `latency: ${n} messages at ${(n / sendSeconds).toFixed(0)}/s → message→Job p50 ${pct(50).toFixed(3)} s, p99 ${pct(99).toFixed(3)} s, max ${lat.at(-1)!.toFixed(3)} s; ` +
        `of which message→EmbeddingJob (SQS + ingest) p50 ${toStored(50).toFixed(3)} s, p99 ${toStored(99).toFixed(3)} s, ` +
        `EmbeddingJob→Job (dispatch) p50 ${dispatch(50).toFixed(3)} s, p99 ${dispatch(99).toFixed(3)} s`,
    );
    return { p50: pct(50), p99: pct(99), dispatchP50: dispatch(50), dispatchP99: dispatch(99) };
  } finally {
    await stopChild(child);
    await Promise.all([watch.stop(), ejWatch.stop()]);
  }
}

/**
 * CPU seconds (user + system) so far of the environment's processes and the controller, by role, from /proc (Linux;
 * empty elsewhere). Says where the machine's two cores went during a measurement.
 */
function cpuByRole(env: TestEnv, controllerPid?: number): Record<string, number> {
  const out: Record<string, number> = {};
  const motoPort = new URL(env.aws.endpoint).port;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const text = cmd.join(' ');
      const role =
        Number(pid) === controllerPid
          ? 'controller'
          : text.includes('moto_server') && cmd.includes(motoPort)
            ? 'moto'
            : text.includes(env.tmpDir)
              ? (['etcd', 'kube-apiserver', 'kube-controller-manager'].find((n) => cmd[0]!.endsWith(n)) ??
                undefined)
              : undefined;
      if (!role) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[role] = (out[role] ?? 0) + (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ = 100
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

function cpuDelta(before: Record<string, number>, after: Record<string, number>, seconds: number): string {
  return Object.keys(after)
    .sort()
    .map((k) => `${k} ${(((after[k]! - (before[k] ?? 0)) / seconds) * 100).toFixed(0)}%`)
    .join(', ');
}

/** Sends n messages at `rate`/s in batches of 10 (not waiting for earlier sends); when each was sent, by CR name. */
async function sendPaced(
  env: TestEnv,
  url: string,
  n: number,
  rate: number,
  firstId: number,
): Promise<{ sentAt: Map<string, number>; sendSeconds: number }> {
  const sentAt = new Map<string, number>();
  const perBatch = 10;
  const intervalMs = (perBatch / rate) * 1000;
  const start = performance.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < n; i += perBatch) {
    const due = start + (i / perBatch) * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const bodies = Array.from({ length: Math.min(perBatch, n - i) }, (_, k) => message(firstId + i + k));
    const t = performance.now();
    for (const b of bodies) sentAt.set(nameOf(b), t);
    sends.push(sendBatch(env, url, bodies));
  }
  await Promise.all(sends);
  return { sentAt, sendSeconds: (performance.now() - start) / 1000 };
}

/**
 * The SQS server alone, no controller, same client settings as the controller (8 long-pollers, 1 s waits, 10 per
 * receive, one DeleteMessageBatch per receive), so the controller's figures can be read as ratios of what the server
 * itself sustains in this run:
 * - `drain(n)`: n queued messages → all received and deleted (compare `controller.sqs_to_job_per_s`);
 * - `latency(n, rate)`: n messages sent at `rate`/s while the pollers receive and delete → send → receive p50/p99
 *   (compare message → Job at the same rate).
 */
function rawSqs(env: TestEnv, log: (m: string) => void) {
  const pollers = POLLERS;
  /** Receives + deletes until `until()`; calls onMessage with each body when received. */
  const consume = async (queue: SqsQueue, until: () => boolean, onMessage: (body: string) => void) => {
    await Promise.all(
      Array.from({ length: pollers }, async () => {
        while (!until()) {
          const got = await queue.receive({ maxMessages: 10, waitSeconds: 1, visibilitySeconds: 60 });
          for (const m of got) onMessage(m.body);
          if (got.length > 0) await queue.deleteBatch(got.map((m) => m.handle));
        }
      }),
    );
  };
  const drain = async (n: number): Promise<number> => {
    const q = await createQueues(env, 'bench-raw-drain');
    const bodies = Array.from({ length: n }, (_, i) => message(4_000_000 + i));
    await Promise.all(chunk(bodies, 10).map((b) => sendBatch(env, q.url, b)));
    let got = 0;
    const t0 = performance.now();
    await consume(
      q.queue,
      () => got >= n,
      () => got++,
    );
    const perS = n / ((performance.now() - t0) / 1000);
    log(`raw SQS: ${n} queued messages → received and deleted by ${pollers} pollers: ${perS.toFixed(1)}/s`);
    return perS;
  };
  const latency = async (n: number, rate: number) => {
    const q = await createQueues(env, 'bench-raw-lat');
    const receivedAt = new Map<string, number>();
    let done = false;
    const consumed = consume(
      q.queue,
      () => done,
      (body) => receivedAt.set(nameOf(body), performance.now()),
    );
    const cpu0 = cpuByRole(env);
    const t0 = performance.now();
    const { sentAt, sendSeconds } = await sendPaced(env, q.url, n, rate, 6_000_000 + rate * 10_000);
    await waitFor(() => receivedAt.size >= n, 120_000, 'every raw message received');
    const wall = (performance.now() - t0) / 1000;
    log(`raw SQS run: CPU of one core over ${wall.toFixed(1)} s: ${cpuDelta(cpu0, cpuByRole(env), wall)}`);
    done = true;
    await consumed;
    const lat = [...sentAt].map(([k, t]) => (receivedAt.get(k)! - t) / 1000).sort((a, b) => a - b);
    const pct = percentile(lat);
    log(
      `raw SQS latency: ${n} messages at ${(n / sendSeconds).toFixed(0)}/s → received p50 ${pct(50).toFixed(3)} s, p99 ${pct(99).toFixed(3)} s`,
    );
    return { p50: pct(50), p99: pct(99) };
  };
  return { drain, latency };
}

async function measureRss(
  env: TestEnv,
  kube: KubeRest,
  count: number,
  log: (m: string) => void,
): Promise<{ rss: number; heapUsed: number }> {
  const ns = await createNamespace(kube, 'bench-rss');
  const q = await createQueues(env, 'bench-rss');
  const t0 = performance.now();
  await createAll(
    kube,
    ns,
    Array.from({ length: count }, (_, i) => message(3_000_000 + i)),
  );

  log(`created ${count} EmbeddingJobs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const port = await freePort();
  const config = testConfig(ns, q, env, {
    ingest: { pollers: 1, waitSeconds: 1, maxOutstanding: 1 },
    dispatch: { batchSize: 10, maxActivePods: 1 },
  });
  const child = spawnController(env, 'bench-rss', config, port);
  try {
    const metric = async (name: string) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      return line ? Number(line.split(' ')[1]) : undefined;
    };
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200,
      120_000,
      'controller ready',
    );
    await waitFor(
      async () => (await metric('embedctl_outstanding_embeddingjobs')) === count,
      120_000,
      `${count} in cache`,
    );
    await new Promise((r) => setTimeout(r, 5_000)); // let reconciles of all 10k settle
    const mb = async (name: string) => ((await metric(name)) ?? NaN) / 1024 / 1024;
    const rss = await mb('process_resident_memory_bytes');
    const heapUsed = await mb('nodejs_heap_size_used_bytes');
    const heapTotal = await mb('nodejs_heap_size_total_bytes');
    const external = await mb('nodejs_external_memory_bytes');
    log(
      `RSS with ${count} EmbeddingJobs in cache: ${rss.toFixed(1)} MB (V8 heap used ${heapUsed.toFixed(1)} of ${heapTotal.toFixed(1)} MB, external ${external.toFixed(1)} MB)`,
    );
    return { rss, heapUsed };
  } finally {
    await stopChild(child);
  }
}

async function createAll(kube: KubeRest, ns: string, bodies: string[]): Promise<void> {
  const client = new EmbeddingJobClient(kube);
  let next = 0;
  await Promise.all(
    Array.from({ length: 48 }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        await client.create(newEmbeddingJob(EmbedMessage.parse(JSON.parse(body)), ns));
      }
    }),
  );
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { startEnvironment } = await import('../test/harness/environment.js');
  const environment = await startEnvironment();
  try {
    const figures = await benchController(environment.env);
    const targets: Record<string, { target: number; better: 'higher' | 'lower' }> = {
      'controller.jobs_per_s': { target: 100, better: 'higher' },
      'controller.msg_to_job_p50_s': { target: 2, better: 'lower' },
      'controller.msg_to_job_p99_s': { target: 2, better: 'lower' },
      'controller.rss_mb_10k': { target: 250, better: 'lower' },
    };
    for (const [k, v] of Object.entries(figures)) {
      const t = targets[k];
      if (!t) {
        console.log(`${k.padEnd(40)} ${String(v.value).padStart(8)} ${v.unit}`);
        continue;
      }
      const ratio = t.better === 'higher' ? v.value / t.target : t.target / v.value;
      console.log(
        `${k.padEnd(30)} ${String(v.value).padStart(8)} ${v.unit.padEnd(16)} target ${t.better === 'higher' ? '≥' : '≤'} ${t.target}  (×${ratio.toFixed(2)} of target)`,
      );
    }
    console.log(JSON.stringify(figures));
  } finally {
    await environment.stop();
  }
}
