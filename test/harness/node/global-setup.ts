import type { TestProject } from 'vitest/node';

import type { NodeClusterEnv } from './cluster.js';
import { startNodeCluster } from './cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    nodeEnv: NodeClusterEnv;
  }
}

/**
 * Brings up the real node once for the e2e project (the charts deployed) and provides its endpoints as `nodeEnv`.
 * The teardown fails the run if a process is left or the host is not as it was found.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startNodeCluster();
  project.provide('nodeEnv', cluster.env);
  return async () => {
    try {
      await cluster.stop();
    } catch (err) {
      process.exitCode = 1; // vitest only logs teardown errors
      throw err;
    }
  };
}
