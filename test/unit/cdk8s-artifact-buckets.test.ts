import { describe, expect, it } from 'vitest';
import { programEnv } from '../../cdk8s/common.js';
import { loadEnvironment } from '../../cdk8s/config.js';
import { ENV } from '../../core/config/env.js';
import { parseControllerConfig } from '../../controller/config.js';

const value = (env: ReturnType<typeof programEnv>, name: string) =>
  (env.find((e) => e.name === name) as { value?: string } | undefined)?.value;

/** Issue 18 item 3: the operator's bucket allowlist reaches both programs that check it. */
describe('artifacts bucket allowlist in the charts', () => {
  it('is unset by default: only ARTIFACTS_BUCKET is allowed', () => {
    const cfg = loadEnvironment('dev');
    for (const p of ['controller', 'worker'] as const) {
      expect(value(programEnv(cfg, p), ENV.ARTIFACTS_BUCKET)).toBe('receipt-artifacts-dev');
      expect(value(programEnv(cfg, p), ENV.ARTIFACTS_BUCKETS_ALLOWED)).toBeUndefined();
    }
  });

  it('buckets.allowedArtifacts becomes ARTIFACTS_BUCKETS_ALLOWED for the controller and the worker', () => {
    const cfg = loadEnvironment('dev', { buckets: { allowedArtifacts: ['receipts-eu', 'receipts-us'] } });
    for (const p of ['controller', 'worker'] as const)
      expect(value(programEnv(cfg, p), ENV.ARTIFACTS_BUCKETS_ALLOWED)).toBe('receipts-eu,receipts-us');
    expect(value(programEnv(cfg, 'compactor'), ENV.ARTIFACTS_BUCKETS_ALLOWED)).toBeUndefined();
    const env = Object.fromEntries(
      programEnv(cfg, 'controller').flatMap((e) => ('value' in e ? [[e.name, e.value]] : [])),
    );
    const c = parseControllerConfig({ ...env, NAMESPACE: 'receipts' });
    expect(c.artifactBuckets).toEqual(['receipt-artifacts-dev', 'receipts-eu', 'receipts-us']);
  });
});
