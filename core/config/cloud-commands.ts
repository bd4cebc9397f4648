import { z } from 'zod';
import { ENV, type Env } from './env.js';
import { envVar, parseEnv } from './parse.js';

/** `embedctl submit --cloud`: the deployed controller's EMBED queue and the artifacts bucket (unless --bucket). */
export function parseSubmitCloudEnv(
  env: Env,
  bucketFlag: string | undefined,
): { queueUrl: string; dlqUrl?: string; bucket: string } {
  const e = parseEnv(
    z.object({
      [ENV.EMBED_QUEUE_URL]: envVar.required,
      [ENV.EMBED_DLQ_URL]: envVar.optional,
      [ENV.ARTIFACTS_BUCKET]: bucketFlag ? envVar.optional : envVar.required,
    }),
    env,
    'cloud mode environment (the same as the deployed programs)',
  );
  return {
    queueUrl: e.EMBED_QUEUE_URL,
    ...(e.EMBED_DLQ_URL ? { dlqUrl: e.EMBED_DLQ_URL } : {}),
    bucket: bucketFlag ?? e.ARTIFACTS_BUCKET!,
  };
}
