// `embedctl snapshot restore --cloud` is a fenced writer (issue 17 item 2b), against the real kube-apiserver of the
// test environment: it takes the compactor's coordination.k8s.io Lease, refuses (naming the holder) while a live
// compactor holds it, and when it switches CURRENT it first records its token in the volume's FENCE, so the deposed
// compactor fails its next fence instead of publishing over the restore.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { LEASE_NAMES } from '../../../core/config/env.js';
import { makeKubeClient } from '../../../core/kube/client.js';
import { KubeLeaseBackend } from '../../../core/lease/kube-lease.js';
import { FencedLease, LeaseLostError } from '../../../core/lease/lease.js';
import { fenceVolume, readFence } from '../../../core/snapshot/fence.js';
import { installVersion, readCurrent, switchCurrent } from '../../../core/snapshot/volume.js';

const env = inject('testEnv');
const ROOT = join(import.meta.dirname, '..', '..', '..');
const kube = makeKubeClient({ kubeconfig: env.kubeconfigPath });
const namespace = `restore-${Date.now().toString(36)}`;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'restore-cloud-'));
  await kube.request('POST', '/api/v1/namespaces', { body: { metadata: { name: namespace } } });
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await kube.request('DELETE', `/api/v1/namespaces/${namespace}`);
});

const V1 = '20260101T000000000Z-aaaaaa';
const V2 = '20260101T000005000Z-bbbbbb';

/** A volume with lines versions V1 (CURRENT) and V2, both intact. */
async function volume(name: string): Promise<string> {
  const root = join(dir, name);
  for (const v of [V1, V2]) {
    const src = join(dir, `${name}-src-${v}`);
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'chroma.sqlite3'), v);
    await installVersion(root, 'lines', v, src);
  }
  await switchCurrent(root, 'lines', V1, { expected: undefined });
  return root;
}

/** `embedctl snapshot restore lines V2 --cloud` in a child process, on `root`, against the Lease `leaseName`. */
function restore(
  root: string,
  opts: { leaseName?: string; waitSeconds: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const args = ['snapshot', 'restore', 'lines', V2, '--cloud', '--chroma-root', root];
  args.push(
    '--namespace',
    namespace,
    '--kubeconfig',
    env.kubeconfigPath,
    '--lease-wait',
    String(opts.waitSeconds),
  );
  if (opts.leaseName) args.push('--lease-name', opts.leaseName);
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    // No mirror: V2 is intact on the volume. $NAMESPACE and $LEASE_NAME are not read (the flags and the default are).
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      VECTORS_BUCKET: '',
      NAMESPACE: 'elsewhere',
      LEASE_NAME: 'other',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

describe('snapshot restore --cloud holds the compactor Lease', () => {
  it('refuses with the holder named while a live compactor holds the Lease; CURRENT and FENCE untouched', async () => {
    const root = await volume('held');
    const backend = new KubeLeaseBackend(kube, namespace, LEASE_NAMES.compactor);
    const compactor = new FencedLease(backend, {
      identity: 'embedctl-compactor-7d9f-x2',
      durationMs: 30_000,
    });
    const token = await compactor.acquire();
    try {
      await fenceVolume(root, compactor);
      const t0 = Date.now();
      const res = await restore(root, { waitSeconds: 1 });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr.trim()).toMatch(
        new RegExp(
          `^error: lease/${namespace}/embedctl-compactor is held by embedctl-compactor-7d9f-x2 \\(token ${token}, renewed \\d+ s ago, for 30 s\\); waited 1\\.\\d s for it: the compactor is running; scale its Deployment to 0`,
        ),
      );
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(await readCurrent(root, 'lines')).toBe(V1);
      expect(await readFence(root)).toBe(token);
      expect(await compactor.assertHeld()).toBe(token); // the compactor was not disturbed
    } finally {
      await compactor.release();
    }
  });

  it('once the Lease is free (a paused compactor let it expire) it fences with a new token, switches, releases', async () => {
    const root = await volume('fenced');
    const backend = new KubeLeaseBackend(kube, namespace, `${LEASE_NAMES.compactor}-2`);
    // A compactor that paused: it stops renewing, so the restore sees its Lease unchanged for its duration.
    const paused = new FencedLease(backend, {
      identity: 'compactor-paused',
      durationMs: 2_000,
      renewEveryMs: 3_600_000,
    });
    const old = await paused.acquire();
    expect(await fenceVolume(root, paused)).toBe(old);

    const res = await restore(root, { leaseName: `${LEASE_NAMES.compactor}-2`, waitSeconds: 5 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`lines: ${V2} on the volume is intact — CURRENT is now ${V2}`);
    expect(await readCurrent(root, 'lines')).toBe(V2);
    // FENCE holds the restore's token, one above the paused compactor's; the Lease was given up afterwards.
    expect(readFileSync(join(root, 'FENCE'), 'utf8')).toBe(`${old + 1}\n`);
    expect((await backend.read())?.record).toMatchObject({ holder: '', token: old + 1 });

    // The paused compactor wakes up: its fence fails, whether its lease check sees the restore's holding or not.
    const stale = { assertHeld: async () => old }; // passed its lease check just before the restore took over
    await expect(fenceVolume(root, stale, { collection: 'lines' })).rejects.toThrow(
      new RegExp(`fenced by token ${old + 1}, ours is ${old}`),
    );
    await expect(fenceVolume(root, paused)).rejects.toThrow(LeaseLostError);
    expect(await readFence(root)).toBe(old + 1);
    await paused.release();
  });
});
