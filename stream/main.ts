#!/usr/bin/env node
import { processEnv } from '../core/config/env.js';
import { createLogger } from '../core/log.js';
import { crashHooksFromEnv } from '../core/testing/crash-points.js';
import { streamProcessorFromEnv } from './from-env.js';

/**
 * Standalone stream processor (the controller normally runs it as a leader-only runnable). Used by the crash-matrix
 * tests and for debugging: `tsx stream/main.ts` with the same environment as the controller (STREAM_NO_SINK=1: no job
 * results recorded). Stops on SIGTERM/SIGINT.
 */
const log = createLogger('stream');
const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => controller.abort());
const env = processEnv();
const processor = await streamProcessorFromEnv({ env, log, hooks: crashHooksFromEnv(env) });
await processor.run(controller.signal);
