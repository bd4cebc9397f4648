import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LeaseLostError } from '../lease/lease.js';
import { fsyncDir, writeDurably } from '../durable-fs.js';

/** The file on the volume root that records the highest fencing token that claimed the volume. */
export const FENCE_FILE = 'FENCE';

/** What fenceVolume needs of a lease: the re-read of its backend (FencedLease.assertHeld) giving our token. */
export interface FenceHolder {
  assertHeld(): Promise<number>;
}

/** The token recorded in `{root}/FENCE`; 0 when there is none (or it holds no number). */
export async function readFence(root: string): Promise<number> {
  try {
    return Number((await readFile(join(root, FENCE_FILE), 'utf8')).trim()) || 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/**
 * The fence before a commit point on the shared volume (switching CURRENT), one implementation for every writer: the
 * compactor and `embedctl snapshot restore`. The lease must still be ours (re-read from its backend: LeaseLostError
 * otherwise), and no higher token may have claimed the volume: `{root}/FENCE` records the highest token that passed
 * here, so a deposed holder whose lease check passed just before a successor took over still fails here once the
 * successor has fenced. Our token is recorded (write + fsync + rename) when it is higher. Returns our token;
 * `context` goes into the LeaseLostError (the compactor passes the collection).
 */
export async function fenceVolume(
  root: string,
  lease: FenceHolder,
  context: Record<string, unknown> = {},
): Promise<number> {
  const token = await lease.assertHeld();
  await mkdir(root, { recursive: true });
  const recorded = await readFence(root);
  if (recorded > token) {
    throw new LeaseLostError(`volume ${root} fenced by token ${recorded}, ours is ${token}`, {
      ...context,
      token,
      fence: recorded,
    });
  }
  if (recorded < token) {
    const path = join(root, FENCE_FILE);
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeDurably(tmp, `${token}\n`);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(root);
  }
  return token;
}
