import { OPENAI_SECRET } from '../core/config/env.js';
import { imageAllowed } from '../core/contracts/image-reference.js';
import { ConfigError } from '../core/errors.js';

/**
 * What a worker Job may be, whatever the worker ConfigMap says. Whoever can edit that ConfigMap (or a compromised
 * controller) must not get pods that run as another ServiceAccount, run another image or read other Secrets; the
 * operator sets this policy on the controller's command line, and the charts' ValidatingAdmissionPolicy on Jobs the
 * controller creates enforces the same (cdk8s/charts/admission.ts).
 */
export interface WorkerPolicy {
  /** The only ServiceAccount worker pods run as. */
  serviceAccountName: string;
  /**
   * Images allowed: a repository (`registry/repo`: any tag or digest in it), a prefix ending in `/`, `:` or `@`, or
   * an exact reference. Empty: every image is refused.
   */
  allowedImages: readonly string[];
  /** Secrets the worker's `env` may reference (secretKeyRef). */
  allowedSecrets: readonly string[];
}

/** Fixed here, not configurable: the Role bound to it is the worker's (get EmbeddingJobs, patch their status). */
export const WORKER_SERVICE_ACCOUNT = 'embedctl-worker';
export const DEFAULT_WORKER_SECRETS: readonly string[] = [OPENAI_SECRET.name];

export interface WorkerJobFields {
  serviceAccountName: string;
  image: string;
  env: readonly Record<string, unknown>[];
}

/**
 * Pure: each problem names the ConfigMap key and the offending value, so the refusal can be shown on the
 * EmbeddingJobs that wait for it.
 */
export function workerPolicyProblems(s: WorkerJobFields, p: WorkerPolicy): string[] {
  const problems: string[] = [];
  if (s.serviceAccountName !== p.serviceAccountName)
    problems.push(
      `serviceAccountName: must be ${JSON.stringify(p.serviceAccountName)} (got ${JSON.stringify(s.serviceAccountName)})`,
    );
  if (!imageAllowed(s.image, p.allowedImages))
    problems.push(
      `image: ${JSON.stringify(s.image)} is not allowed (allowed: ${
        p.allowedImages.length ? p.allowedImages.join(', ') : 'none; set --allowed-images'
      })`,
    );
  s.env.forEach((e, i) => {
    const ref = (e.valueFrom as { secretKeyRef?: { name?: unknown } } | undefined)?.secretKeyRef;
    if (ref && !p.allowedSecrets.includes(String(ref.name)))
      problems.push(
        `env[${i}] (${String(e.name)}): may not reference Secret ${JSON.stringify(ref.name)} (allowed: ${p.allowedSecrets.join(', ')})`,
      );
  });
  return problems;
}

/** A worker ConfigMap the policy refuses: no worker Job is built from it. */
export class WorkerConfigRefused extends ConfigError {
  constructor(
    readonly configMap: string,
    readonly problems: string[],
  ) {
    super(`worker ConfigMap ${configMap} refused: ${problems.join('; ')}`, { configMap, problems });
  }
}

export function assertWorkerPolicy(configMap: string, s: WorkerJobFields, p: WorkerPolicy): void {
  const problems = workerPolicyProblems(s, p);
  if (problems.length) throw new WorkerConfigRefused(configMap, problems);
}
