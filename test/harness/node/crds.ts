import { execFileSync } from 'node:child_process';

/**
 * Waits until the CRDs are Established. Not `kubectl wait` (nor a jsonpath filter): both error out on a CRD whose
 * status has no conditions yet, right after the apply, instead of waiting.
 */
export function waitEstablished(
  kubectl: (args: string[]) => string,
  crds: string[],
  timeoutMs = 60_000,
): void {
  const deadline = Date.now() + timeoutMs;
  const established = (crd: string): boolean => {
    const { status } = JSON.parse(kubectl(['get', 'crd', crd, '-o', 'json'])) as {
      status?: { conditions?: { type: string; status: string }[] };
    };
    return status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
  };
  for (const crd of crds) {
    while (!established(crd)) {
      if (Date.now() > deadline) throw new Error(`CRD ${crd} not Established after ${timeoutMs} ms`);
      execFileSync('sleep', ['0.2']);
    }
  }
}
