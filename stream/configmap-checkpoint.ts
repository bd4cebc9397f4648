import type { ConfigMap } from 'kubernetes-types/core/v1.js';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../core/backoff.js';
import type { Checkpoint, CheckpointStore } from '../core/aws/dynamo-stream-feed.js';
import { APP_NAME, LABEL, MANAGED_BY } from '../core/contracts/labels.js';
import { errorMessage, PipelineError } from '../core/errors.js';
import { configMaps, type NamespacedResource } from '../core/kube/objects.js';
import { isAlreadyExists, isConflict, isNotFound, type Kube } from '../core/kube/rest.js';
import { LeaseLostError } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';

/** Annotation naming the process that wrote the checkpoint last (its leader identity). */
export const CHECKPOINT_WRITER_ANNOTATION = 'embedding.receipts.dev/checkpoint-writer';
/** Annotation with the time of that write (ISO 8601). */
export const CHECKPOINT_WRITTEN_AT_ANNOTATION = 'embedding.receipts.dev/checkpoint-written-at';

/** This process does not lead (any more): the checkpoint was not written, and must not be. */
export class CheckpointFencedError extends LeaseLostError {}

/** The ConfigMap kept changing under us (or the API kept failing) until the save's attempts or deadline ran out. */
export class CheckpointConflictError extends PipelineError {
  constructor(message: string, context: Record<string, unknown> = {}, options?: ErrorOptions) {
    super('Transient', message, context, options);
  }
}

export interface ConfigMapCheckpointOptions {
  /** Written to the `checkpoint-writer` annotation (default `<hostname>-<pid>`; stream/from-env.ts passes POD_NAME). */
  identity?: string;
  /** Checked before every write: false = deposed, nothing is written (CheckpointFencedError). */
  isLeader?: () => boolean;
  /** Aborted when leadership is lost (the manager's leader signal): nothing is written after that. */
  signal?: AbortSignal;
  /** Writes per save, the first included (default 5). */
  maxAttempts?: number;
  /** One save gives up after this long, ms (default 10 s); each request is bounded by what is left of it. */
  deadlineMs?: number;
  log?: Logger;
}

/**
 * Stream checkpoints in a ConfigMap (key `checkpoint.json`), so the controller needs no volume and a new leader
 * resumes where the old one committed.
 *
 * Fenced by leadership, not by the resourceVersion alone: every write first checks `isLeader()` and the leader
 * signal, and a deposed process writes nothing (CheckpointFencedError, not retried). Writes replace with the cached
 * resourceVersion; a 409 means someone else wrote since (a deposed leader's late write, `kubectl edit`): the store
 * re-reads the ConfigMap and writes our position again, because we lead and our in-memory position is exactly what
 * we handled. So the result never moves a shard back behind what we handled (a foreign *lower* seq would replay
 * sent records; we overwrite it), nor ahead of it (a foreign *higher* seq could skip records we never sent; we
 * overwrite that too). Shards present only in the foreign write are dropped, with a warning naming them: nothing
 * says their records were handled, and a missing entry costs a replay from TRIM_HORIZON at worst, while a wrong one
 * could lose records. (To edit the checkpoint by hand, stop the stream processor first: `STREAM_PROCESSOR=off`.)
 * A save makes at most `maxAttempts` writes within `deadlineMs`, then fails with CheckpointConflictError (the
 * caller retries the commit later; nothing loops unbounded here). The writer identity goes into an annotation.
 */
export class ConfigMapCheckpointStore implements CheckpointStore {
  private readonly configMaps: NamespacedResource<ConfigMap>;
  private resourceVersion: string | undefined;
  readonly identity: string;

  constructor(
    kube: Kube,
    readonly namespace: string,
    readonly name: string,
    private readonly options: ConfigMapCheckpointOptions = {},
  ) {
    this.configMaps = configMaps(kube);
    this.identity = options.identity || `${hostname()}-${process.pid}`;
  }

  async load(): Promise<Checkpoint> {
    const cm = await this.read(Date.now() + (this.options.deadlineMs ?? 10_000));
    return parseCheckpoint(cm);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    const deadline = Date.now() + (this.options.deadlineMs ?? 10_000);
    const maxAttempts = Math.max(1, this.options.maxAttempts ?? 5);
    let lastErr: unknown;
    for (let attempt = 0; attempt < maxAttempts && Date.now() < deadline; attempt++) {
      this.assertLeader();
      try {
        const res = await bounded(this.write(checkpoint), deadline, 'checkpoint write');
        this.resourceVersion = res.metadata?.resourceVersion;
        return;
      } catch (err) {
        lastErr = err;
        try {
          if (isConflict(err) || isAlreadyExists(err)) {
            // Someone else wrote (or created it) since we read: re-read, then write our position again.
            const cm = await this.read(deadline);
            const foreign = parseCheckpoint(cm, { lenient: true });
            const dropped = Object.keys(foreign.shards).filter((id) => !(id in checkpoint.shards));
            this.options.log?.warn(
              {
                configMap: this.name,
                attempt,
                foreignWriter: cm?.metadata?.annotations?.[CHECKPOINT_WRITER_ANNOTATION],
                droppedShards: dropped,
              },
              'stream checkpoint was changed by another writer; writing our position again',
            );
            continue;
          }
          if (isNotFound(err) && this.resourceVersion) {
            // Deleted under us: create it again.
            this.resourceVersion = undefined;
            continue;
          }
          throw err;
        } catch (inner) {
          // API errors (of the write or of the re-read): a short pause within the deadline, then another attempt.
          lastErr = inner;
          this.options.log?.warn({ err: inner, attempt }, 'stream checkpoint write failed');
          await sleep(backoffMs(attempt, { baseMs: 100, maxMs: Math.max(0, deadline - Date.now()) }));
        }
      }
    }
    throw new CheckpointConflictError(
      `stream checkpoint ${this.namespace}/${this.name} not written after ${maxAttempts} attempt(s) within ${this.options.deadlineMs ?? 10_000} ms: ${errorMessage(lastErr)}`,
      { namespace: this.namespace, name: this.name },
      { cause: lastErr },
    );
  }

  private assertLeader(): void {
    const lost = this.options.signal?.aborted || (this.options.isLeader && !this.options.isLeader());
    if (lost) {
      throw new CheckpointFencedError(
        `not the leader (any more): stream checkpoint ${this.namespace}/${this.name} is not written`,
        { identity: this.identity },
      );
    }
  }

  private write(checkpoint: Checkpoint): Promise<ConfigMap> {
    const body: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: this.name,
        namespace: this.namespace,
        labels: {
          [LABEL.name]: APP_NAME,
          [LABEL.managedBy]: MANAGED_BY.controller,
          [LABEL.component]: 'stream-processor',
        },
        annotations: {
          [CHECKPOINT_WRITER_ANNOTATION]: this.identity,
          [CHECKPOINT_WRITTEN_AT_ANNOTATION]: new Date().toISOString(),
        },
        ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
      },
      data: { 'checkpoint.json': JSON.stringify(checkpoint) },
    };
    return this.resourceVersion
      ? this.configMaps.replace(this.namespace, this.name, body)
      : this.configMaps.create(this.namespace, body);
  }

  private async read(deadline: number): Promise<ConfigMap | undefined> {
    const cm = await bounded(this.configMaps.get(this.namespace, this.name), deadline, 'checkpoint read');
    this.resourceVersion = cm?.metadata?.resourceVersion;
    return cm;
  }
}

/**
 * The stored checkpoint. Invalid JSON fails a load (starting over at TRIM_HORIZON would replay a day of records;
 * an operator fixes the hand edit) but not a conflict re-read (we overwrite it with our position anyway).
 */
function parseCheckpoint(cm: ConfigMap | undefined, opts: { lenient?: boolean } = {}): Checkpoint {
  const raw = cm?.data?.['checkpoint.json'];
  if (!raw) return { shards: {} };
  try {
    const parsed = JSON.parse(raw) as Partial<Checkpoint>;
    return { ...parsed, shards: parsed.shards ?? {} };
  } catch (err) {
    if (opts.lenient) return { shards: {} };
    throw err;
  }
}

/** Rejects when `deadline` passes first (the request itself may still land: the next save then sees a 409). */
async function bounded<T>(p: Promise<T>, deadline: number, what: string): Promise<T> {
  const ms = Math.max(0, deadline - Date.now());
  const ac = new AbortController();
  try {
    return await Promise.race([
      p,
      sleep(ms, undefined, { signal: ac.signal }).then(() => {
        throw new CheckpointConflictError(`${what} did not answer within the save deadline`);
      }),
    ]);
  } finally {
    ac.abort();
  }
}
