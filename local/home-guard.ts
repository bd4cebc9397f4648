import { chmodSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { ConfigError } from '../core/errors.js';

/** What of a home directory decides whether it is safe: who owns it and who may write into it. */
export interface HomeFacts {
  isDirectory: boolean;
  isSymbolicLink: boolean;
  uid: number;
  mode: number;
}

/**
 * Why a home must not be used, or undefined when it is safe. A home another user owns or may write to is one where
 * that user can plant pid files, lock files or symlinks that the runner then follows, kills or overwrites.
 */
export function homeProblem(facts: HomeFacts, myUid: number): string | undefined {
  if (facts.isSymbolicLink) return 'it is a symbolic link (pass the directory it points to)';
  if (!facts.isDirectory) return 'it is not a directory';
  if (facts.uid !== myUid) return `it is owned by uid ${facts.uid}, not by you (uid ${myUid})`;
  if (facts.mode & 0o022)
    return `it is ${facts.mode & 0o002 ? 'world' : 'group'}-writable (mode ${(facts.mode & 0o777).toString(8)})`;
  return undefined;
}

const factsOf = (st: Stats): HomeFacts => ({
  isDirectory: st.isDirectory(),
  isSymbolicLink: st.isSymbolicLink(),
  uid: st.uid,
  mode: st.mode,
});

/**
 * Creates the home (mode 0700) when it is missing, refuses one that is not safe (ConfigError: exit 2), and makes an
 * older home (created 0755 before this check) private. Everything the process creates afterwards is owner-only
 * (umask 077): receipts, queues and the ledger are nobody else's to read.
 */
export function ensureHome(root: string): void {
  let st = lstatSync(root, { throwIfNoEntry: false });
  if (!st) {
    mkdirSync(root, { recursive: true, mode: 0o700 });
    st = lstatSync(root);
  }
  const uid = process.getuid?.() ?? st.uid;
  const problem = homeProblem(factsOf(st), uid);
  if (problem)
    throw new ConfigError(
      `--home ${root} is not safe to use: ${problem}; use a directory only you own and can write (mkdir -m 700)`,
      { home: root },
    );
  if (st.mode & 0o077) chmodSync(root, 0o700);
  privateUmask();
}

function privateUmask(): void {
  try {
    process.umask(0o077);
  } catch {
    // worker threads cannot change the umask; the 0700 home already keeps others out
  }
}
