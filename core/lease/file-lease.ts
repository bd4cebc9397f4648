import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LeaseBackend, LeaseState } from './lease.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Lease backend in a JSON file (local mode, tests). Compare-and-swap is a short critical section under an
 * O_EXCL lock file holding the pid; a lock file whose process is gone, or older than `staleLockMs`, is broken.
 */
export class FileLeaseBackend implements LeaseBackend {
  readonly description: string;

  constructor(
    readonly path: string,
    private readonly staleLockMs = 5_000,
  ) {
    this.description = `file:${path}`;
  }

  async read(): Promise<{ state: LeaseState | undefined; version: string | undefined }> {
    try {
      const doc = JSON.parse(await readFile(this.path, 'utf8')) as { rev: string; state?: LeaseState };
      return { state: doc.state, version: doc.rev };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: undefined, version: undefined };
      throw err;
    }
  }

  async write(state: LeaseState | undefined, version: string | undefined): Promise<boolean> {
    await mkdir(dirname(this.path), { recursive: true });
    const release = await this.lock();
    try {
      const current = await this.read();
      if (current.version !== version) return false;
      const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ rev: randomBytes(8).toString('hex'), state }));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      return true;
    } finally {
      await release();
    }
  }

  private async lock(): Promise<() => Promise<void>> {
    const lockPath = `${this.path}.lock`;
    for (;;) {
      try {
        const fh = await open(lockPath, 'wx');
        try {
          await fh.writeFile(String(process.pid));
        } finally {
          await fh.close();
        }
        return () => rm(lockPath, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          // Broken at once when its holder is dead (SIGKILLed mid-section), else after staleLockMs.
          const owner = Number((await readFile(lockPath, 'utf8')).trim());
          const { mtimeMs } = await stat(lockPath);
          if ((owner > 0 && !alive(owner)) || Date.now() - mtimeMs > this.staleLockMs) {
            await rm(lockPath, { force: true });
          }
        } catch {
          // gone already
        }
        await sleep(10 + Math.random() * 20);
      }
    }
  }
}
