import { open } from 'node:fs/promises';

/**
 * Writes `content` to `path` and fsyncs it before returning, so a crash after it cannot leave the file empty or torn
 * (written to a temporary name, then renamed or linked into place). `wx` fails when the file exists.
 */
export async function writeDurably(path: string, content: string, flag: 'w' | 'wx' = 'w'): Promise<void> {
  const fh = await open(path, flag);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a directory, so the entries just created, renamed or removed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
