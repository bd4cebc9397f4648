import { InvalidArgumentError } from 'commander';
import type { Resources } from './sources.js';
import { describeJob, describeRun, describeSnapshot } from './describe.js';
import { deadLetterRow, jobRow, runRow, snapshotRow, type Row } from './views.js';

/**
 * The resource kinds of `embedctl get|describe`, by every name kubectl users would type (plural, singular, short),
 * each with where it is read, its name, its table row and (where one object has more to say) its description.
 */
export interface Kind<T = unknown> {
  /** The singular name, as in `embeddingjob "x" not found`. */
  singular: string;
  list(r: Resources): Promise<T[]>;
  name(item: T): string;
  row(item: T, now: number): Row;
  describe?(item: T): string;
  /** What an empty table says (kubectl: "No resources found"). */
  empty: string;
}

const kind = <T>(k: Kind<T>) => k as Kind;

export const KINDS = {
  jobs: kind({
    singular: 'embeddingjob',
    list: (r) => r.jobs(),
    name: (j) => j.metadata.name,
    row: jobRow,
    describe: describeJob,
    empty: 'No jobs found.',
  }),
  runs: kind({
    singular: 'run',
    list: (r) => r.runs(),
    name: (x) => x.run_id,
    row: runRow,
    describe: describeRun,
    empty: 'No runs found.',
  }),
  snapshots: kind({
    singular: 'snapshot',
    list: (r) => r.snapshots(),
    name: (s) => s.collection,
    row: (s) => snapshotRow(s),
    describe: describeSnapshot,
    empty: 'No snapshots found.',
  }),
  deadletters: kind({
    singular: 'deadletter',
    list: (r) => r.deadLetters(),
    name: (d) => (d.kind === 'message' ? d.id : d.queue),
    row: deadLetterRow,
    empty: 'No dead letters found.',
  }),
};
export type KindName = keyof typeof KINDS;

const ALIASES: Record<string, KindName> = {
  jobs: 'jobs',
  job: 'jobs',
  ej: 'jobs',
  embeddingjob: 'jobs',
  embeddingjobs: 'jobs',
  runs: 'runs',
  run: 'runs',
  snapshots: 'snapshots',
  snapshot: 'snapshots',
  deadletters: 'deadletters',
  deadletter: 'deadletters',
  dlq: 'deadletters',
};

/** Parses the `<kind>` argument: any alias above, case-insensitive. */
export function kindArg(value: string): KindName {
  const k = ALIASES[value.toLowerCase()];
  if (!k) throw new InvalidArgumentError('Expected jobs, runs, snapshots or deadletters.');
  return k;
}
