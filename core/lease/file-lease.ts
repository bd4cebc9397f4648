import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { writeDurably } from '../durable-fs.js';
import type { LeaseBackend, LeaseRecord, StoredLease } from './lock.js';

/**
 * LeaseLock backend in files (local mode, tests), without a lock file to break: every write is a new generation
 * `<path>.<n>`, published with link(2), which fails when that name exists. Of two writers that read generation n,
 * exactly one creates n+1; the other sees EEXIST, a conflict. Readers take the highest generation; older ones are
 * removed after each write. A writer killed at any point leaves at worst a stray temporary file or an old
 * generation, never a lock that someone must judge stale.
 */
export class FileLeaseBackend implements LeaseBackend {
  readonly description: string;
  private readonly dir: string;
  private readonly prefix: string;

  constructor(readonly path: string) {
    this.description = `file:${path}`;
    this.dir = dirname(path);
    this.prefix = `${basename(path)}.`;
  }

  async read(): Promise<StoredLease | undefined> {
    for (;;) {
      const newest = (await this.generations()).at(-1);
      if (newest === undefined) return undefined;
      try {
        const record = JSON.parse(await readFile(this.file(newest), 'utf8')) as LeaseRecord;
        return { record, version: String(newest) };
      } catch (err) {
        // Removed by a writer that just published a newer generation: read again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  async write(record: LeaseRecord, version: string | undefined): Promise<boolean> {
    await mkdir(this.dir, { recursive: true });
    const next = version === undefined ? 1 : Number(version) + 1;
    if (version === undefined && (await this.generations()).length) return false;
    const tmp = join(this.dir, `.${this.prefix}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    await writeDurably(tmp, JSON.stringify(record), 'wx');
    try {
      await link(tmp, this.file(next));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await rm(tmp, { force: true });
    }
    const present = await this.generations();
    // Generation `next` may have existed and been removed already: then a newer one exists, and ours lost.
    if (present.at(-1)! > next) return false;
    for (const old of present) if (old < next) await rm(this.file(old), { force: true });
    return true;
  }

  private file(generation: number): string {
    return join(this.dir, `${this.prefix}${generation}`);
  }

  /** Generations present, oldest first. */
  private async generations(): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return names
      .filter((n) => n.startsWith(this.prefix) && /^\d+$/.test(n.slice(this.prefix.length)))
      .map((n) => Number(n.slice(this.prefix.length)))
      .sort((a, b) => a - b);
  }
}
