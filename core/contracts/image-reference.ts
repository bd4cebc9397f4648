/**
 * Image references as the worker policy sees them: the controller's check (controller/worker-policy.ts) and the
 * admission policy the charts install (cdk8s/charts/admission.ts) apply the same rule.
 */

/** True when `image` is allowed by one of `allowed` (the rule in WorkerPolicy.allowedImages). */
export function imageAllowed(image: string, allowed: readonly string[]): boolean {
  return allowed.some(
    (p) =>
      image === p ||
      (/[/:@]$/.test(p) && image.startsWith(p)) ||
      image.startsWith(`${p}:`) ||
      image.startsWith(`${p}@`),
  );
}

/** The repository of an image reference (tag and digest dropped): what the charts allow by default. */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
