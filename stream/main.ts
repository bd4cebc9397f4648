#!/usr/bin/env node
import { createLogger } from '../core/log.js';
import { streamProcessorFromEnv } from './from-env.js';

/**
 * Standalone stream processor (the controller normally runs it as a leader-only runnable). Used by the crash-matrix
 * tests and for debugging: `tsx stream/main.ts` with the same environment as the controller. Stops on SIGTERM/SIGINT.
 */
const log = createLogger('stream');
const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => controller.abort());
const processor = await streamProcessorFromEnv({
  log,
  sink: process.env.STREAM_NO_SINK === '1' ? null : undefined,
});
await processor.run(controller.signal);
