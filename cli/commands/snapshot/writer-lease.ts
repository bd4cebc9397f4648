import { hostname } from 'node:os';
import type { Command } from 'commander';
import { ENV, LEASE_NAMES } from '../../../core/config/env.js';
import type { FencedLease } from '../../../core/lease/lease.js';
import type { LeaseBackend } from '../../../core/lease/lock.js';
import { FileLeaseBackend } from '../../../core/lease/file-lease.js';
import { withHeldLease } from '../../../core/lease/hold.js';
import { KubeLeaseBackend } from '../../../core/lease/kube-lease.js';
import { homePaths } from '../../../local/home.js';
import { compactorLease } from '../../cloud.js';
import { chromaRootOption, homeOption, intArg, kubeconfigOption, type VolumeFlags } from '../../options.js';
import { existingHome } from '../../usage.js';

export interface WriterFlags extends VolumeFlags {
  namespace?: string;
  leaseName?: string;
  kubeconfig?: string;
  leaseWait: number;
}

/** The flags of a command that writes CURRENT (restore, migrate): where the volume is, and whose lease to hold. */
export function withWriterOptions(cmd: Command, leaseWait: { help: string; seconds: number }): Command {
  return cmd
    .addOption(homeOption())
    .option(
      '--cloud',
      `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}, fenced by the compactor's Lease`,
    )
    .addOption(chromaRootOption())
    .option(
      '--namespace <ns>',
      'namespace of the compactor\'s Lease (cloud; default $NAMESPACE or "default")',
    )
    .option('--lease-name <name>', `the compactor's Lease (cloud; default ${LEASE_NAMES.compactor})`)
    .addOption(kubeconfigOption())
    .option('--lease-wait <seconds>', leaseWait.help, intArg(0, 3600), leaseWait.seconds);
}

/**
 * The compactor's lease, which every writer of CURRENT holds: the file lease of the home (local mode), or the
 * coordination.k8s.io Lease the compactor Deployment holds (--cloud, cli/cloud.ts).
 */
export async function writerLease(f: WriterFlags): Promise<LeaseBackend> {
  if (!f.cloud) return new FileLeaseBackend(homePaths(existingHome(f.home)).lease);
  return compactorLease(f);
}

/**
 * Runs `fn` holding the compactor's lease (core/lease/hold.ts), so a restore or prune never interleaves with a
 * publish: waits up to `waitMs` while another holder (a running compactor) has it, then refuses naming the holder
 * (LeaseHeldError, exit 1). `prune --cloud` takes no lease: it relies on the compactor's grace period.
 */
export async function withWriterLease<T>(
  backend: LeaseBackend,
  what: string,
  waitMs: number,
  fn: (lease: FencedLease) => Promise<T>,
): Promise<T> {
  return withHeldLease(
    backend,
    {
      identity: `${what}-${hostname()}-${process.pid}`,
      durationMs: 60_000,
      waitMs,
      hint:
        backend instanceof KubeLeaseBackend
          ? 'the compactor is running; scale its Deployment to 0 (or wait until it is idle and exits), or pass a longer --lease-wait'
          : 'a run is in progress; try again when it is idle, or pass a longer --lease-wait',
    },
    fn,
  );
}
