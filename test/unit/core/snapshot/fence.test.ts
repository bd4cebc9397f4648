import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLeaseBackend } from '../../../../core/lease/file-lease.js';
import { LeaseHeldError, withHeldLease } from '../../../../core/lease/hold.js';
import { FencedLease, LeaseLostError } from '../../../../core/lease/lease.js';
import { fenceVolume, readFence } from '../../../../core/snapshot/fence.js';

const holding = (token: number) => ({ assertHeld: async () => token });

describe('fenceVolume (the one fence of the compactor and snapshot restore)', () => {
  it('records a higher token, passes an equal one, and refuses a lower one without touching FENCE', async () => {
    const root = join(mkdtempSync(join(tmpdir(), 'fence-')), 'volume');
    expect(await readFence(root)).toBe(0);
    expect(await fenceVolume(root, holding(3))).toBe(3);
    expect(readFileSync(join(root, 'FENCE'), 'utf8')).toBe('3\n');
    expect(await fenceVolume(root, holding(3))).toBe(3);
    // A deposed holder whose lease check passed just before its successor took over and fenced: refused here.
    const err = await fenceVolume(root, holding(2), { collection: 'lines' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseLostError);
    expect(err).toMatchObject({ context: { collection: 'lines', token: 2, fence: 3 } });
    expect((err as Error).message).toMatch(/fenced by token 3, ours is 2/);
    expect(await readFence(root)).toBe(3);
    expect(readdirSync(root)).toEqual(['FENCE']); // no temporary file left
  });

  it('a lease that is no longer ours fails before FENCE is read or written', async () => {
    const root = mkdtempSync(join(tmpdir(), 'fence-'));
    const lost = {
      assertHeld: async (): Promise<number> => {
        throw new LeaseLostError('gone');
      },
    };
    await expect(fenceVolume(root, lost)).rejects.toThrow('gone');
    expect(readdirSync(root)).toEqual([]);
  });
});

describe('withHeldLease (snapshot restore takes the compactor lease)', () => {
  it('refuses within the wait, naming the holder, while another identity holds the lease', async () => {
    const backend = new FileLeaseBackend(join(mkdtempSync(join(tmpdir(), 'lease-')), 'lease.json'));
    const compactor = new FencedLease(backend, { identity: 'compactor-7f9c', durationMs: 30_000 });
    const token = await compactor.acquire();
    try {
      const t0 = Date.now();
      let ran = false;
      const err = await withHeldLease(
        backend,
        { identity: 'restore-1', durationMs: 10_000, waitMs: 300, retryEveryMs: 50, hint: 'stop it' },
        async () => {
          ran = true;
        },
      ).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(ran).toBe(false);
      expect(err).toBeInstanceOf(LeaseHeldError);
      expect(err).toMatchObject({ reason: 'Transient', context: { holder: 'compactor-7f9c', token } });
      expect((err as Error).message).toMatch(
        new RegExp(
          `^file:.* is held by compactor-7f9c \\(token ${token}, renewed \\d+ s ago, for 30 s\\); waited 0\\.\\d s for it: stop it$`,
        ),
      );
      // The compactor was not disturbed.
      expect(await compactor.assertHeld()).toBe(token);
    } finally {
      await compactor.release();
    }
  });

  it('takes the lease once its holder lets go within the wait, with a higher token, and gives it up after', async () => {
    const backend = new FileLeaseBackend(join(mkdtempSync(join(tmpdir(), 'lease-')), 'lease.json'));
    const compactor = new FencedLease(backend, { identity: 'compactor', durationMs: 30_000 });
    const old = await compactor.acquire();
    setTimeout(() => void compactor.release(), 200);
    const got = await withHeldLease(
      backend,
      { identity: 'restore', durationMs: 10_000, waitMs: 5_000, retryEveryMs: 50 },
      async (lease) => lease.assertHeld(),
    );
    expect(got).toBe(old + 1);
    expect((await backend.read())?.record).toMatchObject({ holder: '', token: old + 1 });
  });
});
