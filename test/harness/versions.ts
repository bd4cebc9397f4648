import { execFileSync } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';

// Keep in step with tools/testenv/build-go.sh and .ci/run, which build and install into the same paths.
export const K8S_VERSION = '1.35.4';
export const ETCD_VERSION = '3.6.16';
export const MOTO_VERSION = '5.2.5';

/** Root of the versioned tool cache outside the repo (`$TESTENV_CACHE`, default `~/.cache/receipt-embeddings-testenv`). */
export function cacheRoot(): string {
  return process.env.TESTENV_CACHE || join(homedir(), '.cache', 'receipt-embeddings-testenv');
}

/** etcd, kube-apiserver, kube-controller-manager and kubectl, as built by tools/testenv/build-go.sh. */
export function defaultBinDir(root = cacheRoot()): string {
  return join(root, `k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}`, 'bin');
}

/** The Python venv with `moto[server]`. */
export function defaultMotoVenv(root = cacheRoot()): string {
  return join(root, `moto-${MOTO_VERSION}`);
}

export const KEDA_VERSION = '2.21.0';

/** keda-operator (bin/) and KEDA's CRDs (crds/), as built by tools/testenv/build-keda.sh (keyed by Go's version too). */
export function defaultKedaDir(root = cacheRoot()): string {
  const goVersion = process.env.TESTENV_GO_VERSION ?? goVersionOfMachine();
  return join(root, `keda-${KEDA_VERSION}-${goVersion}`);
}

export const KSM_VERSION = '2.20.0';

/** kube-state-metrics (bin/), as built by tools/testenv/build-kube-state-metrics.sh (keyed by Go's version too). */
export function defaultKsmDir(root = cacheRoot()): string {
  const goVersion = process.env.TESTENV_GO_VERSION ?? goVersionOfMachine();
  return join(root, `kube-state-metrics-${KSM_VERSION}-${goVersion}`);
}

/** Debian's `prometheus` package (the one that gives promtool to the unit tests). */
export const PROMETHEUS_BIN = '/usr/bin/prometheus';

function goVersionOfMachine(): string {
  return execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim();
}

/** The project image and the pause image as docker-archives (tools/image/build.sh with SAVE_DIR). */
export function defaultImageDir(): string {
  return process.env.IMAGE_WORK || join(homedir(), '.cache', 'receipt-embeddings-image');
}
