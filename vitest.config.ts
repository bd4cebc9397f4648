import { defineConfig } from 'vitest/config';

// Three projects: `unit` needs no servers; `integration` starts the real test environment once (globalSetup)
// and shares its endpoints with every test file through `inject`; `e2e` does the same with a real node.
// Local mode embeds with the lexical embedder in tests (fast, exact), and every child process a test starts inherits
// that; the tests of the sentence embedder ask for it explicitly (docs/local.md).
const env = { EMBEDCTL_EMBEDDER: 'lexical' };

export default defineConfig({
  // Where vitest keeps each file's last duration (it starts the longest files first). CI points it outside the clone
  // (.ci/run), so a fresh checkout still packs the integration files well on two workers.
  ...(process.env.VITEST_CACHE_DIR ? { cacheDir: process.env.VITEST_CACHE_DIR } : {}),
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          globalSetup: ['test/harness/unit-tmp.ts'],
          env,
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/harness/global-setup.ts'],
          env,
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Two files at a time: most of the suite waits on servers, timeouts and child processes, not on CPU.
          // (A project with its own maxWorkers needs its own group: after the unit files.)
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // The deployed system on a real node (kubelet, containerd, KEDA): test/harness/node. Run on its own
        // (`npm test` runs it after the other two), never beside the integration servers.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/harness/node/global-setup.ts'],
          env,
          testTimeout: 600_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          sequence: { concurrent: false },
        },
      },
    ],
  },
});
