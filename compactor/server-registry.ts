import { writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChromaServer, type ChromaServer } from '../core/chroma/server.js';
import type { Logger } from '../core/log.js';

/**
 * Records the Chroma servers this compactor starts (pid + directory) under `{workRoot}/.servers/`, so that after a
 * SIGKILL of the compactor (local mode: nothing kills the orphaned children, unlike a container's cgroup) the next
 * start kills them before reusing their directories. A second server on a directory corrupts it silently
 * (docs/adr/0004-single-compactor-fencing-token.md). Only pids whose command line still names the recorded directory
 * are killed.
 */
export class ServerRegistry {
  private readonly dir: string;

  constructor(
    workRoot: string,
    private readonly log?: Logger,
  ) {
    this.dir = join(workRoot, '.servers');
  }

  async start(path: string): Promise<ChromaServer> {
    await mkdir(this.dir, { recursive: true });
    // Recorded synchronously at spawn, so a SIGKILL while the server is still starting cannot orphan it unrecorded.
    const server = await startChromaServer({
      path,
      onSpawn: (pid) => writeFileSync(join(this.dir, `${pid}.json`), JSON.stringify({ pid, path })),
    });
    return {
      ...server,
      stop: async () => {
        await server.stop();
        await rm(join(this.dir, `${server.pid}.json`), { force: true });
      },
    };
  }

  /** Kills servers left by an earlier incarnation and waits until they are gone. */
  async reap(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let killed = 0;
    for (const name of names) {
      const file = join(this.dir, name);
      try {
        const { pid, path } = JSON.parse(await readFile(file, 'utf8')) as { pid: number; path: string };
        if (await runsOn(pid, path)) {
          process.kill(pid, 'SIGKILL');
          for (let i = 0; i < 100 && (await runsOn(pid, path)); i++) await sleep(50);
          killed++;
          this.log?.warn({ pid, path }, 'killed a Chroma server left by an earlier compactor');
        }
      } catch {
        // unreadable record or already gone
      }
      await rm(file, { force: true });
    }
    return killed;
  }
}

async function runsOn(pid: number, path: string): Promise<boolean> {
  try {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (/\) Z /.test(stat)) return false; // zombie
    const i = cmd.indexOf('--path');
    return i >= 0 && cmd[i + 1] === path;
  } catch {
    return false;
  }
}
