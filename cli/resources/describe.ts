import type { CompactionRunItem } from '../../core/contracts/compaction-run.js';
import type { EmbeddingJob } from '../../core/contracts/embedding-job.js';
import { COLLECTIONS } from '../../core/contracts/ids.js';
import { formatTable } from '../print.js';
import type { SnapshotSet } from './views.js';

/**
 * `embedctl describe`: one object as kubectl describe lays it out, `Key:  value` lines with nested blocks indented
 * and the conditions as a table. Pure: the command prints what these return (through cli/print.ts, which escapes
 * control characters).
 */
type Field = [string, string | number | undefined];

function fields(list: Field[], indent = ''): string {
  const shown = list.filter(([, v]) => v !== undefined && v !== '');
  const width = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}  ${v}\n`).join('');
}

export function describeJob(ej: EmbeddingJob): string {
  const s = ej.status ?? {};
  let out = fields([
    ['Name', ej.metadata.name],
    ['Namespace', ej.metadata.namespace],
    ['Created', ej.metadata.creationTimestamp],
    ['Phase', s.phase],
    ['Attempts', s.attempts ?? 0],
    ['Worker Job', s.workerJob],
    ['Start Time', s.startTime],
    ['Completion Time', s.completionTime],
    ['Next Attempt', s.nextAttemptTime],
    ['Message', s.message],
  ]);
  out += 'Spec:\n';
  out += fields(
    [
      ['Image', ej.spec.imageId],
      ['Receipt', ej.spec.receiptId],
      ['Lines', `s3://${ej.spec.artifactsBucket}/${ej.spec.linesKey}`],
      ['Words', `s3://${ej.spec.artifactsBucket}/${ej.spec.wordsKey}`],
      ['Collections', ej.spec.collections.join(', ')],
      ['Priority', ej.spec.priority],
      ['Model', ej.spec.model],
      ['Source', ej.spec.source],
    ],
    '  ',
  );
  if (s.result) {
    out += 'Result:\n';
    out += fields(
      [
        ['Run', s.result.runId],
        ['Lines', s.result.lines],
        ['Rows', s.result.rows],
        ['Words', s.result.words],
        ['Merchant', s.result.merchant],
        ['Duration', s.result.durationMs === undefined ? undefined : `${s.result.durationMs}ms`],
      ],
      '  ',
    );
  }
  if (s.compaction && Object.keys(s.compaction).length > 0) {
    out += 'Compaction:\n';
    out += fields(
      ej.spec.collections.map((c): Field => [c, s.compaction?.[c] ?? 'Pending']),
      '  ',
    );
  }
  out += 'Conditions:\n';
  out += s.conditions?.length
    ? indent(
        formatTable(
          s.conditions.map((c) => ({
            TYPE: c.type,
            STATUS: c.status,
            REASON: c.reason,
            'LAST TRANSITION': c.lastTransitionTime,
            MESSAGE: c.message,
          })),
        ),
      )
    : '  <none>\n';
  return out;
}

export function describeRun(r: CompactionRunItem): string {
  let out = fields([
    ['Name', r.run_id],
    ['Job', r.job_name],
    ['Image', r.image_id],
    ['Receipt', r.receipt_id],
    ['Model', r.model],
    ['Dimensions', r.dimensions],
    ['Created', r.created_at],
    ['Updated', r.updated_at ?? undefined],
  ]);
  for (const c of COLLECTIONS) {
    if (r[`${c}_state`] === undefined) continue;
    out += `${c[0]!.toUpperCase()}${c.slice(1)}:\n`;
    out += fields(
      [
        ['State', r[`${c}_state`]],
        ['Delta', r[`${c}_delta_key`] ?? r[`${c}_delta_prefix`]],
        ['SHA-256', r[`${c}_sha256`]],
        ['Vectors', r[`${c}_vectors`]],
        ['Merged', r[`${c}_merged_vectors`]],
        ['Started', r[`${c}_started_at`] ?? undefined],
        ['Finished', r[`${c}_finished_at`] ?? undefined],
        ['Error', r[`${c}_error`] ?? undefined],
      ],
      '  ',
    );
  }
  return out;
}

export function describeSnapshot(s: SnapshotSet): string {
  return (
    fields([
      ['Name', s.collection],
      ['Current', s.current ?? '<none>'],
      ['Object-store pointer', s.pointer ?? '<none>'],
    ]) +
    'Versions:\n' +
    (s.versions.length
      ? s.versions.map((v) => `  ${v === s.current ? '*' : ' '} ${v}\n`).join('')
      : '  <none>\n')
  );
}

const indent = (text: string) =>
  text
    .split('\n')
    .map((l) => (l ? `  ${l}` : l))
    .join('\n');
