import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startApiServer } from './apiserver.js';
import { startChroma } from './chroma.js';
import type { Component, ComponentContext } from './component.js';
import { startControllerManager } from './controller-manager.js';
import { startEmbeddings } from './embeddings.js';
import { startEtcd } from './etcd.js';
import { startMoto } from './moto.js';
import { PortAllocator } from './ports.js';
import { ProcessRegistry, reapStaleRuns } from './processes.js';
import { defaultBinDir, defaultMotoVenv } from './versions.js';

// No vitest imports here: `npm run bench` starts the same environment.

/** Everything a test (or the bench) needs to reach the environment. Plain data, so vitest can `provide` it. */
export interface TestEnv {
  /** kubeconfig for kubectl and `KubeConfig.loadFromFile` (cluster, user and context `testenv`). */
  kubeconfigPath: string;
  /** `caData` is base64 PEM, as in a kubeconfig's `certificate-authority-data` and client-node's `Cluster.caData`. */
  kube: { server: string; token: string; caData: string };
  aws: { endpoint: string; region: 'us-east-1'; accessKeyId: 'test'; secretAccessKey: 'test' };
  chroma: { url: string; host: string; port: number };
  embeddings: { baseUrl: string; apiKey: string; model: string; dimensions: number };
  tmpDir: string;
  binDir: string;
}

export interface StartEnvironmentOptions {
  /** Default: the versioned cache dir (see versions.ts). */
  binDir?: string;
  motoVenv?: string;
  /** Parent of the run's temporary directory. Default: os.tmpdir(). */
  tmpParent?: string;
  embeddingDimensions?: number;
  /** Keep the run directory (logs) after stop() or a failed start. Default: `$TESTENV_KEEP === '1'`. */
  keepTmpDir?: boolean;
  log?: (message: string) => void;
}

export interface TestEnvironment {
  env: TestEnv;
  /** Milliseconds from start call to ready, per component, plus `total`. */
  timings: Record<string, number>;
  /** Stops everything in reverse start order; throws if a child process or a bound port is left. */
  stop(): Promise<void>;
}

const RUN_PREFIX = 'receipt-testenv-';
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function requireExecutable(path: string, hint: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`test environment: ${path} is missing or not executable. ${hint}`);
  }
}

/**
 * A free port is released before the child binds it, so another process can take it in between. A child that
 * exited because its address was in use is started again (on new ports).
 */
async function retryOnPortClash<T>(
  name: string,
  start: () => Promise<T>,
  log: (m: string) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const clash = /exited during start-up/.test(message) && /address already in use/i.test(message);
      if (!clash || attempt >= 3) throw err;
      log(`${name}: port taken before it could bind; starting it again`);
    }
  }
}

/**
 * Starts etcd → kube-apiserver → kube-controller-manager, and in parallel moto, chroma and the embeddings server,
 * all on free 127.0.0.1 ports, with files and logs in one temporary directory.
 */
export async function startEnvironment(opts: StartEnvironmentOptions = {}): Promise<TestEnvironment> {
  const log = opts.log ?? ((m: string) => console.log(`[testenv] ${m}`));
  const binDir = opts.binDir ?? defaultBinDir();
  const motoVenv = opts.motoVenv ?? defaultMotoVenv();
  const chromaBin = join(REPO_ROOT, 'node_modules', '.bin', 'chroma');
  const keep = opts.keepTmpDir ?? process.env.TESTENV_KEEP === '1';
  const dimensions = opts.embeddingDimensions ?? 1536;

  for (const b of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kubectl']) {
    requireExecutable(join(binDir, b), 'Build it with tools/testenv/build-go.sh (or run .ci/run).');
  }
  requireExecutable(join(motoVenv, 'bin', 'moto_server'), 'Create it with tools/testenv/moto-venv.sh.');
  requireExecutable(chromaBin, 'Run npm ci.');

  const tmpParent = opts.tmpParent ?? tmpdir();
  const reaped = reapStaleRuns(tmpParent, RUN_PREFIX);
  if (reaped.length) log(`killed leftovers of an earlier run: ${reaped.join(', ')}`);

  const runDir = mkdtempSync(join(tmpParent, RUN_PREFIX));
  const registry = new ProcessRegistry(runDir, !keep);
  const ports = new PortAllocator();
  const ctx: ComponentContext = { registry, runDir, binDir, port: () => ports.next() };

  const started: Component[] = [];
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  async function timed<T extends Component>(name: string, start: () => Promise<T>): Promise<T> {
    const t = performance.now();
    const component = await retryOnPortClash(name, start, log);
    started.push(component);
    timings[name] = Math.round(performance.now() - t);
    log(`${name} ready in ${timings[name]} ms`);
    return component;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const t = performance.now();
      const errors: unknown[] = [];
      const perComponent: string[] = [];
      for (const component of [...started].reverse()) {
        const tc = performance.now();
        await component.stop().catch((err: unknown) => errors.push(err));
        perComponent.push(`${component.name} ${Math.round(performance.now() - tc)}`);
      }
      await registry.stopAll().catch((err: unknown) => errors.push(err));
      const bound = await ports.stillBound();
      if (bound.length) errors.push(new Error(`ports still bound after teardown: ${bound.join(', ')}`));
      if (!keep) rmSync(runDir, { recursive: true, force: true });
      log(
        `stopped in ${Math.round(performance.now() - t)} ms (${perComponent.join(', ')})${keep ? `; kept ${runDir}` : ''}`,
      );
      if (errors.length === 1) throw errors[0];
      if (errors.length) throw new AggregateError(errors, 'test environment teardown failed');
    })());

  const etcd = timed('etcd', () => startEtcd(ctx));
  const api = etcd.then((e) => timed('kube-apiserver', () => startApiServer(ctx, { etcdUrl: e.url })));
  const kcm = api.then((a) => timed('kube-controller-manager', () => startControllerManager(ctx, a)));
  const moto = timed('moto', () => startMoto(ctx, motoVenv));
  const chroma = timed('chroma', () => startChroma(ctx, chromaBin));
  const embeddings = ctx
    .port()
    .then((port) => timed('embeddings', () => startEmbeddings({ port, dimensions })));

  const results = await Promise.allSettled([etcd, api, kcm, moto, chroma, embeddings]);
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length) {
    await stop().catch((err: unknown) => failures.push(err));
    for (const f of failures) log(`start-up failure: ${f instanceof Error ? f.message : String(f)}`);
    throw failures.length === 1
      ? failures[0]
      : new AggregateError(failures, 'test environment failed to start');
  }
  timings.total = Math.round(performance.now() - t0);
  log(`all components ready in ${timings.total} ms (run dir ${runDir})`);

  const [a, m, c, e] = [await api, await moto, await chroma, await embeddings];
  const env: TestEnv = {
    kubeconfigPath: a.kubeconfigPath,
    kube: { server: a.server, token: a.token, caData: Buffer.from(a.caPem).toString('base64') },
    aws: { endpoint: m.endpoint, region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' },
    chroma: { url: c.url, host: c.host, port: c.port },
    embeddings: { baseUrl: e.baseUrl, apiKey: 'test', model: e.model, dimensions },
    tmpDir: runDir,
    binDir,
  };
  return { env, timings, stop };
}
