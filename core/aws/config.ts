/**
 * Shared AWS client settings. `endpoint` points every client at one compatible server (moto on loopback in tests,
 * LocalStack-style setups); in the cloud it is unset and the SDK's default resolution and credential chain apply.
 */
export interface AwsSettings {
  region: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Settings from an environment (the process's, or one a test or the compactor child passes). Static credentials are
 * taken from it too, so a passed environment is honoured whole; otherwise the SDK's default chain applies (IRSA, Pod
 * Identity, profiles).
 */
export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(env.AWS_ENDPOINT_URL ? { endpoint: env.AWS_ENDPOINT_URL } : {}),
    ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
  };
}

export function clientConfig(s: AwsSettings) {
  return {
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    ...(s.credentials ? { credentials: s.credentials } : {}),
    maxAttempts: 5,
  };
}
