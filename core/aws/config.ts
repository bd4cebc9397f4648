import { NodeHttpHandler } from '@smithy/node-http-handler';
import { z } from 'zod';
import { ENV, processEnv, type Env } from '../config/env.js';
import { definedOnly, envVar, parseEnv } from '../config/parse.js';

/**
 * Shared AWS client settings. `endpoint` points every client at one compatible server (moto on loopback in tests,
 * LocalStack-style setups); in the cloud it is unset and the SDK's default resolution and credential chain apply.
 */
export interface AwsSettings {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Per-attempt HTTP timeouts; DEFAULT_AWS_TIMEOUTS when absent. */
  timeouts?: AwsTimeouts;
}

/**
 * Bounds on one HTTP attempt of an AWS SDK call, so a server that accepts and never answers fails the call (a
 * `TimeoutError`, retried like any transient error within `maxAttempts`) instead of hanging its caller forever.
 */
export interface AwsTimeouts {
  /** Until the TCP (and TLS) connection is up. */
  connectMs: number;
  /**
   * From sending the request until the response headers arrive: covers sending the body, so it must allow one
   * multipart part (S3Store uploads 8 MiB parts, 4 at a time: 60 s is ≥ 140 KB/s per part) and an SQS long poll
   * (20 s). A response body being read afterwards is not bounded by it.
   */
  requestMs: number;
}

export const DEFAULT_AWS_TIMEOUTS: AwsTimeouts = { connectMs: 5_000, requestMs: 60_000 };

const AwsEnv = z.object({
  [ENV.AWS_REGION]: envVar.optional,
  [ENV.AWS_DEFAULT_REGION]: envVar.optional,
  /** One endpoint for every client (moto in tests, kind emulators); unset in the cloud. */
  [ENV.AWS_ENDPOINT_URL]: envVar.optional,
  [ENV.AWS_ACCESS_KEY_ID]: envVar.optional,
  [ENV.AWS_SECRET_ACCESS_KEY]: envVar.optional,
});

const millis = z
  .string()
  .trim()
  .regex(/^\d+$/, { error: 'must be a positive integer of milliseconds' })
  .transform(Number)
  .pipe(z.number().int().min(1, { error: 'must be a positive integer of milliseconds' }));
const TimeoutsEnv = z.object({
  [ENV.AWS_CONNECT_TIMEOUT_MS]: millis.default(DEFAULT_AWS_TIMEOUTS.connectMs),
  [ENV.AWS_REQUEST_TIMEOUT_MS]: millis.default(DEFAULT_AWS_TIMEOUTS.requestMs),
});

/**
 * Settings from an environment (the process's, or one a test or the compactor child passes). Static credentials are
 * taken from it too, so a passed environment is honoured whole; otherwise the SDK's default chain applies (IRSA, Pod
 * Identity, profiles). Timeouts: AWS_CONNECT_TIMEOUT_MS and AWS_REQUEST_TIMEOUT_MS (ConfigError when not a positive
 * integer).
 */
export function awsSettingsFromEnv(env: Env = processEnv()): AwsSettings {
  const e = parseEnv(AwsEnv, env, 'AWS settings');
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = e;
  return definedOnly({
    region: e.AWS_REGION ?? e.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: e.AWS_ENDPOINT_URL,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined,
    timeouts: awsTimeoutsFromEnv(env),
  });
}

export function awsTimeoutsFromEnv(env: Env = processEnv()): AwsTimeouts {
  const e = parseEnv(TimeoutsEnv, env, 'AWS timeouts');
  return { connectMs: e.AWS_CONNECT_TIMEOUT_MS, requestMs: e.AWS_REQUEST_TIMEOUT_MS };
}

export function clientConfig(s: AwsSettings) {
  const t = s.timeouts ?? DEFAULT_AWS_TIMEOUTS;
  return {
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.credentials ? { credentials: s.credentials } : {}),
    maxAttempts: 5,
    // Without these the SDK waits for a connection and an answer forever (a hung server hung the compactor).
    requestHandler: new NodeHttpHandler({
      connectionTimeout: t.connectMs,
      requestTimeout: t.requestMs,
      // Else an exceeded requestTimeout is only a warning in the log and the request goes on waiting.
      throwOnRequestTimeout: true,
    }),
  };
}
