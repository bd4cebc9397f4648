import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One tar entry: [name, type, extra, mode]; type file (extra = content), zeros (a file of `extra` zero bytes, made
 * in Python: large sizes do not fit an argument list), dir, symlink/hardlink (extra = target), fifo, chr.
 */
export type TarEntry = [
  string,
  'file' | 'zeros' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'chr',
  string?,
  number?,
];

/**
 * Builds a .tar.gz with Python's tarfile (which writes any entry type, as the audit's reproductions did, and is the
 * library the original system tarred its deltas and snapshots with). Returns the archive's path.
 */
export function pythonTarGz(entries: TarEntry[]): string {
  const out = join(mkdtempSync(join(tmpdir(), 'tar-')), 'a.tar.gz');
  const py = `
import io, json, sys, tarfile
entries = json.loads(sys.argv[2])
types = {'file': tarfile.REGTYPE, 'zeros': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE, 'hardlink': tarfile.LNKTYPE, 'fifo': tarfile.FIFOTYPE, 'chr': tarfile.CHRTYPE}
with tarfile.open(sys.argv[1], 'w:gz') as t:
    for name, kind, extra, mode in entries:
        i = tarfile.TarInfo(name)
        i.type = types[kind]
        i.mode = mode if mode is not None else (0o755 if kind == 'dir' else 0o644)
        data = None
        if kind == 'file':
            data = (extra or '').encode()
            i.size = len(data)
        elif kind == 'zeros':
            data = bytes(int(extra))
            i.size = len(data)
        elif kind in ('symlink', 'hardlink'):
            i.linkname = extra
        t.addfile(i, io.BytesIO(data) if data is not None else None)
`;
  execFileSync('python3', [
    '-c',
    py,
    out,
    JSON.stringify(entries.map(([n, k, e, m]) => [n, k, e ?? null, m ?? null])),
  ]);
  return out;
}
