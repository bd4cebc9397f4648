import type { TestProject } from 'vitest/node';

import './env.js';
import { startEnvironment } from './environment.js';

/**
 * Starts the real test environment once for the integration project and provides its endpoints as `testEnv`.
 * The returned teardown stops it and fails the run if a child process or a port is left behind.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const environment = await startEnvironment();
  project.provide('testEnv', environment.env);
  return async () => {
    try {
      await environment.stop();
    } catch (err) {
      // vitest only logs teardown errors ("error during close"); a leak must fail the run.
      process.exitCode = 1;
      throw err;
    }
  };
}
