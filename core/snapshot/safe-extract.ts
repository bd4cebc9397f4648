import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { extract as tarExtract, list as tarList, type ReadEntry } from 'tar';
import { errorMessage, PipelineError } from '../errors.js';

/**
 * Extraction of snapshot archives (issue 18 item 7). A Chroma directory holds only regular files and directories, so
 * nothing else is accepted: a symlink chain (`d/x -> ..`, `a -> d/x/../outside`) passed node-tar's `strict` checks
 * and later copies followed it out of the staging directory. Archives are checked in a first pass (types, paths,
 * entry count, total size) so a bad one writes nothing; the extraction repeats the type check and drops
 * setuid/setgid/sticky bits, and a final walk of the result proves it.
 */
export interface ExtractLimits {
  /** Entries (files + directories). */
  maxEntries: number;
  /** Sum of the declared file sizes, i.e. what extraction writes. */
  maxBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = {
  maxEntries: 100_000,
  maxBytes: 64 * 1024 ** 3,
};

const ALLOWED_TYPES = new Set(['File', 'OldFile', 'Directory']);

export class UnsafeArchiveError extends PipelineError {
  constructor(archive: string, problem: string) {
    super('SnapshotDamaged', `archive ${archive} refused: ${problem}`, { archive, problem });
  }
}

/** Why this entry may not be extracted, or undefined. Pure. */
export function entryProblem(e: { type: string; path: string }): string | undefined {
  if (!ALLOWED_TYPES.has(e.type))
    return `${JSON.stringify(e.path)} is a ${e.type} (only files and directories)`;
  const p = e.path.replace(/\/+$/, '');
  if (p.startsWith('/') || p.split('/').some((s) => s === '..'))
    return `${JSON.stringify(e.path)} leaves the extraction directory`;
  return undefined;
}

/** First pass: reads every header without writing anything; throws UnsafeArchiveError on the first problem. */
export async function inspectArchive(
  file: string,
  name: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  let problem: string | undefined;
  try {
    await tarList({
      file,
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        if (problem) return;
        entries++;
        bytes += e.size ?? 0;
        problem =
          entryProblem({ type: e.type, path: e.path }) ??
          (entries > limits.maxEntries ? `more than ${limits.maxEntries} entries` : undefined) ??
          (bytes > limits.maxBytes ? `more than ${limits.maxBytes} bytes unpacked` : undefined);
      },
    });
  } catch (err) {
    // Truncated gzip, a tar cut short, garbage: node-tar and zlib throw untyped errors; the archive is refused.
    problem ??= `not a readable tar.gz (${errorMessage(err)})`;
  }
  if (problem) throw new UnsafeArchiveError(name, problem);
  return { entries, bytes };
}

/** Inspects, then extracts `file` into `dest` with the same checks, then verifies what landed. */
export async function extractArchive(
  file: string,
  dest: string,
  name: string,
  limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS,
): Promise<void> {
  await inspectArchive(file, name, limits);
  await mkdir(dest, { recursive: true });
  let problem: string | undefined;
  await tarExtract({
    file,
    cwd: dest,
    strict: true,
    preservePaths: false,
    preserveOwner: false,
    filter: (path, entry) => {
      const e = entry as ReadEntry;
      problem ??= entryProblem({ type: e.type, path });
      if (problem) return false;
      if (typeof e.mode === 'number') e.mode &= 0o777; // no setuid/setgid/sticky
      return true;
    },
  });
  if (problem) throw new UnsafeArchiveError(name, problem);
  await assertPlainTree(dest, name);
}

/** Every entry under `dir` is a regular file or a directory, with no setuid/setgid/sticky bit left. */
export async function assertPlainTree(dir: string, name: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    const s = await lstat(path);
    if (!s.isFile() && !s.isDirectory())
      throw new UnsafeArchiveError(name, `${path} is not a file or directory`);
    if (s.mode & 0o7000) await chmod(path, s.mode & 0o777);
    if (s.isDirectory()) await assertPlainTree(path, name);
  }
}
