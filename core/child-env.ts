import { processEnv, type Env } from './config/env.js';

/**
 * The environment of a child process the project spawns: only what a program needs to run (where binaries and temp
 * files are, the locale), plus what the caller names. Never the whole environment: a Chroma server or a local
 * compactor has no use for OPENAI_API_KEY or AWS credentials, and a child's environment is readable in
 * /proc/<pid>/environ.
 */
export const BASE_ENV = [
  'PATH',
  'HOME',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'TZ',
  'USER',
  'LOGNAME',
] as const;

/** `names` (exact) and every variable starting with one of `prefixes`, from `env`, on top of BASE_ENV. */
export function childEnv(
  env: Env = processEnv(),
  o: { names?: readonly string[]; prefixes?: readonly string[] } = {},
): Record<string, string> {
  const names = new Set<string>([...BASE_ENV, ...(o.names ?? [])]);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (names.has(k) || o.prefixes?.some((p) => k.startsWith(p))) out[k] = v;
  }
  return out;
}
