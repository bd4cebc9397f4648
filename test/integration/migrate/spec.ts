import type { FixtureSpec } from '../../support/lambda-fixtures.js';

/**
 * The index the migration test takes over: ≥ 5,000 vectors per collection at the original's 1536 dimensions, written
 * by Python chromadb 1.5.x with churn (a purged log, persisted HNSW segments, deletions, re-embeds); lines as a
 * tar.gz snapshot (plus an older, unpointed version), words in the legacy uncompressed layout.
 */
export const MIGRATE_SPEC: FixtureSpec = {
  seed: 5,
  dim: 1536,
  snapshots: [
    { collection: 'lines', count: 40, layout: 'tar', version: '20260713_110000', pointer: false },
    { collection: 'lines', count: 5200, layout: 'tar', version: '20260714_120000', churn: true },
    { collection: 'words', count: 5200, layout: 'legacy', version: '20260714_120500', churn: true },
  ],
};
