import type { EmbeddingJob } from '../../core/contracts/embedding-job.js';
import { API_VERSION, KIND } from '../../core/contracts/embedding-job.js';
import type { CompactionRunItem } from '../../core/contracts/compaction-run.js';
import type { Collection } from '../../core/contracts/ids.js';
import type { LocalJob } from '../../core/local/job-table.js';
import type { DeadLetter } from '../../core/local/sqlite-queue.js';

/**
 * What `embedctl get` shows of each resource, as pure functions of the objects and the clock: a row has the default
 * columns and, after them, the `-o wide` ones (kubectl's priority-1 printer columns). The job columns are the CRD's
 * printer columns (crds/embedding-job-crd.ts), so `embedctl get jobs --cloud` and `kubectl get ej` agree.
 */
export interface Row {
  cells: Record<string, string>;
  wide: Record<string, string>;
}

/** kubectl's short age: 45s, 12m, 5h, 3d. */
export function age(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

/** True when every collection of the job is merged, Failed when one failed, else Pending; '-' before any state. */
export function compactedText(
  c: Partial<Record<Collection, string>> | undefined,
  collections: readonly Collection[],
): string {
  if (!c) return '-';
  if (collections.every((k) => c[k] === 'Completed')) return 'True';
  if (collections.some((k) => c[k] === 'Failed')) return 'Failed';
  return 'Pending';
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/**
 * A local job as the EmbeddingJob the controller would hold, so both modes print (and `-o json|yaml` emit) one
 * shape. The local table keeps only the last reason and message; the reason is shown as the Running condition the
 * controller writes with it (core/jobs/transitions.ts).
 */
export function localJobAsEmbeddingJob(j: LocalJob): EmbeddingJob {
  const changed = iso(j.completionTime ?? j.startTime ?? j.createdAt)!;
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: { name: j.name, creationTimestamp: iso(j.createdAt)! },
    spec: j.spec,
    status: {
      phase: j.phase,
      attempts: j.attempts,
      ...(j.workerJob ? { workerJob: j.workerJob } : {}),
      ...(j.startTime !== undefined ? { startTime: iso(j.startTime) } : {}),
      ...(j.completionTime !== undefined ? { completionTime: iso(j.completionTime) } : {}),
      ...(j.nextAttemptAt !== undefined ? { nextAttemptTime: iso(j.nextAttemptAt) } : {}),
      ...(j.reason
        ? {
            conditions: [
              {
                type: 'Running',
                status: j.phase === 'Running' ? 'True' : 'False',
                reason: j.reason,
                message: j.message ?? '',
                lastTransitionTime: changed,
              },
            ],
          }
        : {}),
      ...(j.result ? { result: j.result } : {}),
      ...(j.report ? { report: j.report } : {}),
      compaction: j.compaction,
      ...(j.message ? { message: j.message } : {}),
    },
  };
}

export function jobRow(ej: EmbeddingJob, now: number): Row {
  const s = ej.status ?? {};
  return {
    cells: {
      NAME: ej.metadata.name,
      PHASE: s.phase ?? '',
      ATTEMPTS: String(s.attempts ?? 0),
      LINES: s.result ? String(s.result.rows) : '',
      WORDS: s.result ? String(s.result.words) : '',
      COMPACTED: s.phase === 'Succeeded' ? compactedText(s.compaction, ej.spec.collections) : '',
      AGE: ej.metadata.creationTimestamp ? age(Date.parse(ej.metadata.creationTimestamp), now) : '',
    },
    wide: {
      REASON: s.conditions?.find((c) => c.type === 'Running')?.reason ?? '',
      MESSAGE: (s.message ?? '').slice(0, 160),
    },
  };
}

export function runRow(r: CompactionRunItem, now: number): Row {
  const vectors = (c: Collection) => r[`${c}_vectors`];
  return {
    cells: {
      NAME: r.run_id,
      JOB: r.job_name ?? '',
      LINES: r.lines_state ?? '-',
      WORDS: r.words_state ?? '-',
      VECTORS: String((vectors('lines') ?? 0) + (vectors('words') ?? 0)),
      AGE: age(Date.parse(r.created_at), now),
    },
    wide: {
      IMAGE: r.image_id,
      RECEIPT: String(r.receipt_id),
      ERROR: (r.lines_error ?? r.words_error ?? '').slice(0, 160),
    },
  };
}

/** The versions of one collection on the snapshot volume, CURRENT among them, and the S3 mirror's pointer. */
export interface SnapshotSet {
  collection: Collection;
  current?: string;
  versions: string[];
  pointer?: string;
}

export function snapshotRow(s: SnapshotSet): Row {
  return {
    cells: {
      NAME: s.collection,
      CURRENT: s.current ?? '<none>',
      VERSIONS: String(s.versions.length),
      POINTER: s.pointer ?? '<none>',
    },
    wide: { ALL: s.versions.join(',') },
  };
}

/**
 * A dead letter: one message (local mode reads them from the SQLite queue), or one SQS dead-letter queue's depth
 * (cloud: SQS cannot show a message without receiving it, which would change its receive count).
 */
export type DeadLetterView =
  | ({ kind: 'message' } & Omit<DeadLetter, 'attributes'>)
  | { kind: 'queue'; queue: string; visible: number; inFlight: number };

export function deadLetterRow(d: DeadLetterView, now: number): Row {
  if (d.kind === 'queue')
    return {
      cells: { QUEUE: d.queue, MESSAGES: String(d.visible), 'IN-FLIGHT': String(d.inFlight) },
      wide: {},
    };
  return {
    cells: {
      NAME: d.id,
      QUEUE: d.queue,
      RECEIVES: String(d.receiveCount),
      REASON: d.reason.slice(0, 80),
      AGE: age(d.deadAt, now),
    },
    wide: { BODY: d.body.slice(0, 160) },
  };
}
