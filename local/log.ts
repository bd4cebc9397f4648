import { pino, type Logger } from 'pino';
import { ENV, processEnv } from '../core/config/env.js';

/**
 * Logger of the local programs: the same JSON lines as core/log.ts, but on stderr, so stdout carries only what
 * the command prints (the summary, `--json`, a child's stats line).
 */
export function localLogger(component: string, level = processEnv()[ENV.LOG_LEVEL] ?? 'warn'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}

/** Prefix of the one stdout line a child process reports its figures on. */
export const STATS_PREFIX = 'EMBEDCTL_STATS ';

export function printStats(stats: object): void {
  process.stdout.write(`${STATS_PREFIX}${JSON.stringify(stats)}\n`);
}

/** The stats a child printed (the last such line), if any. */
export function parseStats<T>(stdout: string): T | undefined {
  const line = stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith(STATS_PREFIX));
  if (!line) return undefined;
  try {
    return JSON.parse(line.slice(STATS_PREFIX.length)) as T;
  } catch {
    return undefined;
  }
}
