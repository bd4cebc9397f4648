import { z } from 'zod';
import { ENV, STREAM_CHECKPOINT_CONFIGMAP, type Env } from './env.js';
import { definedOnly, envVar, parseEnv } from './parse.js';

/** The stream processor (in the controller, or stream/main.ts standalone) besides the AWS settings. */
const StreamEnv = z.object({
  /** `off`: the controller does not run it (it runs elsewhere). */
  [ENV.STREAM_PROCESSOR]: envVar.optional,
  /** Unset: looked up from LEDGER_TABLE with DescribeTable. */
  [ENV.LEDGER_STREAM_ARN]: envVar.optional,
  /** Unset: no sweeper (with a warning), and LEDGER_STREAM_ARN is then required. */
  [ENV.LEDGER_TABLE]: envVar.optional,
  [ENV.NAMESPACE]: envVar.orDefault('default'),
  [ENV.POD_NAME]: envVar.optional,
  [ENV.STREAM_CHECKPOINT_FILE]: envVar.optional,
  [ENV.STREAM_CHECKPOINT_CONFIGMAP]: envVar.orDefault(STREAM_CHECKPOINT_CONFIGMAP),
  [ENV.LINES_QUEUE_URL]: envVar.optional,
  [ENV.WORDS_QUEUE_URL]: envVar.optional,
  [ENV.COMPACTION_DLQ_URL]: envVar.optional,
  /** Standalone only: `1` records no job results. */
  [ENV.STREAM_NO_SINK]: envVar.optional,
  [ENV.STREAM_SWEEP_INTERVAL_MS]: envVar.count.default(600_000),
  [ENV.STREAM_SWEEP_AFTER_MS]: envVar.count.default(1_800_000),
  [ENV.STREAM_SWEEP_LIMIT]: envVar.count.default(500),
});

export interface StreamConfig {
  enabled: boolean;
  streamArn?: string;
  ledgerTable?: string;
  namespace: string;
  identity?: string;
  checkpointFile?: string;
  checkpointConfigMap: string;
  /** Queue URLs; checked where they are used (a sweeper-only or processor-only environment is valid). */
  queues: { lines?: string; words?: string; dlq?: string };
  sink: boolean;
  /** Sweeper: 0 = off. */
  sweep: { intervalMs: number; afterMs: number; limit: number };
}

export function parseStreamEnv(env: Env): StreamConfig {
  const e = parseEnv(StreamEnv, env, 'stream processor configuration');
  return definedOnly({
    enabled: e.STREAM_PROCESSOR !== 'off',
    streamArn: e.LEDGER_STREAM_ARN,
    ledgerTable: e.LEDGER_TABLE,
    namespace: e.NAMESPACE,
    identity: e.POD_NAME,
    checkpointFile: e.STREAM_CHECKPOINT_FILE,
    checkpointConfigMap: e.STREAM_CHECKPOINT_CONFIGMAP,
    queues: { lines: e.LINES_QUEUE_URL, words: e.WORDS_QUEUE_URL, dlq: e.COMPACTION_DLQ_URL },
    sink: e.STREAM_NO_SINK !== '1',
    sweep: {
      intervalMs: e.STREAM_SWEEP_INTERVAL_MS,
      afterMs: e.STREAM_SWEEP_AFTER_MS,
      limit: e.STREAM_SWEEP_LIMIT,
    },
  });
}

/** The LINES and WORDS queue URLs, which the processor and the sweeper both need (errors name the variable). */
export function requireQueues(c: StreamConfig): { lines: string; words: string; dlq?: string } {
  const q = parseEnv(
    z.object({ [ENV.LINES_QUEUE_URL]: envVar.required, [ENV.WORDS_QUEUE_URL]: envVar.required }),
    { [ENV.LINES_QUEUE_URL]: c.queues.lines, [ENV.WORDS_QUEUE_URL]: c.queues.words },
    'stream processor configuration',
  );
  return definedOnly({ lines: q.LINES_QUEUE_URL, words: q.WORDS_QUEUE_URL, dlq: c.queues.dlq });
}
