import { pino, type Logger } from 'pino';
import { ENV, processEnv } from './config/env.js';

export type { Logger };

/**
 * Structured JSON logs. Child loggers carry the ids of what they work on (`ej`, `runId`, `collection`), so every
 * line of a job names it.
 */
export function createLogger(component: string, level = processEnv()[ENV.LOG_LEVEL] ?? 'info'): Logger {
  return pino({ level, base: { component }, timestamp: pino.stdTimeFunctions.isoTime });
}
