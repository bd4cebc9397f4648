import { fileURLToPath } from 'node:url';
import { reapOrphans } from '../core/local/launcher.js';
import { CACHE } from './child-bundle.js';
import type { HomePaths } from './home.js';

/** The child entry from source or from the build (local/run.ts childEntry). */
const ENTRIES = new Set(
  ['.ts', '.js'].map((ext) => fileURLToPath(new URL(`./child-main${ext}`, import.meta.url))),
);
/** The esbuild bundle of child-main in the project's cache (local/child-bundle.ts), named by its content hash. */
const BUNDLE = new RegExp(`^${escapeRegExp(CACHE)}/child-[0-9a-f]{16}/child-main\\.mjs$`);
/** Node options that take the next argument (a loader such as tsx). */
const WITH_VALUE = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--conditions',
  '-C',
  '--title',
  '--env-file',
]);

/**
 * Whether `argv` (a live process's real command line) is exactly a child `local run` started for `name` on `home`:
 * this node running local/child-main (source, build or cached bundle) with only node options before it, then
 * `compactor --home <home>`, or `worker --home <home> --worker-job <name> --jobs <list> [--no-places]`. Pure: the
 * pid file that names the process is not trusted, so this is what orphan reaping checks before it kills.
 */
export function isLocalChild(argv: readonly string[], name: string, home: string): boolean {
  if (argv[0] !== process.execPath) return false;
  let i = 1;
  while (i < argv.length && argv[i]!.startsWith('-')) i += WITH_VALUE.has(argv[i]!) ? 2 : 1;
  const entry = argv[i];
  if (entry === undefined || !(ENTRIES.has(entry) || BUNDLE.test(entry))) return false;
  const [program, ...rest] = argv.slice(i + 1);
  if (program === 'compactor')
    return name === 'compactor' && rest.length === 2 && rest[0] === '--home' && rest[1] === home;
  if (program === 'worker')
    return (
      (rest.length === 6 || (rest.length === 7 && rest[6] === '--no-places')) &&
      rest[0] === '--home' &&
      rest[1] === home &&
      rest[2] === '--worker-job' &&
      rest[3] === name &&
      rest[4] === '--jobs' &&
      rest[5] !== ''
    );
  return false;
}

/** Kills the children a dead `local run` of this home left behind (their pid files in `pids/`). */
export function reapLocalChildren(paths: Pick<HomePaths, 'root' | 'pids'>): string[] {
  return reapOrphans(paths.pids, (argv, name) => isLocalChild(argv, name, paths.root));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
