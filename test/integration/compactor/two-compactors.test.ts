// Two compactors at once (docs/adr/0004-single-compactor-fencing-token.md: two writers corrupt silently, so the Lease
// is the only protection): only the holder publishes; the other waits without touching the volume; a holder that was
// paused past its lease (SIGSTOP) and resumes finds the lease gone, publishes nothing, and exits
// EXIT.leaseLost (failures 1, 2).
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import '../../harness/env.js';
import { EXIT } from '../../../core/config/exit-codes.js';
import { runCollection } from '../../../core/contracts/compaction-run.js';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import { versionsDir } from '../../../core/snapshot/volume.js';
import { VERSION_INFO } from '../../../core/snapshot/volume.js';
import { waitFor } from '../../support/wait.js';
import {
  childEnv,
  dumpLive,
  expectedUnion,
  makeReceipt,
  makeWorld,
  pumpStream,
  spawnTsx,
  writeRun,
  type World,
} from './fixtures.js';

const env = inject('testEnv');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const until = (what: string, fn: () => Promise<boolean>, ms = 60_000): Promise<true> =>
  waitFor(what, async () => ((await fn()) ? true : undefined), ms, 200);

async function publishers(w: World): Promise<{ version: string; holder: string; token: number }[]> {
  const out: { version: string; holder: string; token: number }[] = [];
  for (const c of ['lines', 'words'] as const) {
    let names: string[] = [];
    try {
      names = await readdir(versionsDir(w.root, c));
    } catch {
      continue;
    }
    for (const v of names.filter((n) => !n.startsWith('.'))) {
      const info = JSON.parse(await readFile(join(versionsDir(w.root, c), v, VERSION_INFO), 'utf8')) as {
        holder: string;
        token: number;
      };
      out.push({ version: `${c}/${v}`, holder: info.holder, token: info.token });
    }
  }
  return out;
}

async function completed(
  w: World,
  run: { image_id: string; receipt_id: number; run_id: string },
): Promise<boolean> {
  const item = await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id);
  return (
    !!item &&
    runCollection(item, 'lines')?.state === 'COMPLETED' &&
    runCollection(item, 'words')?.state === 'COMPLETED'
  );
}

describe('two compactors', () => {
  it('only the lease holder publishes; a paused holder that lost its lease publishes nothing and exits with leaseLost', async () => {
    const w = await makeWorld(env, 'two');
    const r1 = makeReceipt(70);
    const run1 = await writeRun(w, r1);
    await pumpStream(w);

    const a = spawnTsx(
      'cli/main.ts',
      ['compactor'],
      childEnv(w, env, {
        POD_NAME: 'compactor-a',
        COMPACTOR_EXIT_WHEN_IDLE_MS: '120000',
        COMPACTOR_WORK_DIR: join(w.dir, 'wa'),
      }),
    );
    await until('A merged run 1', () => completed(w, run1));
    const b = spawnTsx(
      'cli/main.ts',
      ['compactor'],
      childEnv(w, env, {
        POD_NAME: 'compactor-b',
        COMPACTOR_EXIT_WHEN_IDLE_MS: '5000',
        COMPACTOR_WORK_DIR: join(w.dir, 'wb'),
      }),
    );
    await sleep(6000);
    try {
      // B is alive, waiting: the lease is A's and every version on the volume is A's.
      expect(b.child.exitCode).toBeNull();
      expect((await new FileLeaseBackend(w.leaseFile).read())?.record.holder).toBe('compactor-a');
      const before = await publishers(w);
      expect(before.length).toBeGreaterThan(0);
      expect(new Set(before.map((p) => p.holder))).toEqual(new Set(['compactor-a']));

      // Pause A past its lease; B takes over and merges a new run.
      a.child.kill('SIGSTOP');
      const r2 = makeReceipt(71);
      const run2 = await writeRun(w, r2);
      await pumpStream(w);
      await until('B merged run 2', () => completed(w, run2));
      const bDone = await b.done;
      expect(bDone.code, bDone.stderr).toBe(0);

      // A resumes: it must notice the lost lease and leave without writing.
      const beforeResume = await publishers(w);
      a.child.kill('SIGCONT');
      const aDone = await a.done;
      expect(aDone.code, aDone.stderr).toBe(EXIT.leaseLost);
      expect(await publishers(w)).toEqual(beforeResume);
      const after = beforeResume.filter((p) => !before.some((q) => q.version === p.version));
      expect(after.length).toBeGreaterThan(0);
      expect(new Set(after.map((p) => p.holder))).toEqual(new Set(['compactor-b']));
      expect(Math.min(...after.map((p) => p.token))).toBeGreaterThan(Math.max(...before.map((p) => p.token)));
      expect(Number((await readFile(join(w.root, 'FENCE'), 'utf8')).trim())).toBe(after[0]!.token);
      for (const c of ['lines', 'words'] as const) {
        const live = await dumpLive(w.root, c, w.dir);
        expect([...live.records.keys()].sort()).toEqual([...expectedUnion([r1, r2], c).keys()].sort());
      }
    } finally {
      // Never leave a stopped or running compactor behind when an assertion fails.
      for (const p of [a, b]) {
        if (p.child.exitCode === null && p.child.signalCode === null) {
          p.child.kill('SIGCONT');
          p.child.kill('SIGKILL');
        }
      }
    }
  });
});
