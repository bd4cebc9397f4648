import type { ProcessRegistry } from './processes.js';

/** What every component start function gets: where to put its files and how to start children. */
export interface ComponentContext {
  registry: ProcessRegistry;
  /** The run's temporary directory; each component uses its own subdirectory. */
  runDir: string;
  /** Directory holding etcd, kube-apiserver, kube-controller-manager and kubectl. */
  binDir: string;
  /** A free 127.0.0.1 port, remembered for the teardown check. */
  port(): Promise<number>;
}

/** A started component: `stop()` is idempotent. */
export interface Component {
  readonly name: string;
  stop(): Promise<void>;
}
