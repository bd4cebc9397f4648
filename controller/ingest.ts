import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../core/backoff.js';
import { embeddingJobName, type EmbeddingJob } from '../core/contracts/embedding-job.js';
import { errorMessage } from '../core/errors.js';
import { admitEmbedMessage, invalidMessageReason } from '../core/jobs/admission.js';
import type { Logger } from '../core/log.js';
import { KubeJobStore } from '../core/kube/embedding-job-store.js';
import type { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import type { Informer } from '../core/kube/informer.js';
import { isInvalid } from '../core/kube/rest.js';
import type { Queue, QueueMessage } from '../core/ports/queue.js';
import type { IngestSettings } from './config.js';
import type { ControllerMetrics } from './metrics.js';

export interface IngestDeps {
  queue: Queue;
  ejClient: EmbeddingJobClient;
  ejs: Informer<EmbeddingJob>;
  namespace: string;
  settings: IngestSettings;
  /** Buckets a message may name (the configured artifacts bucket and the operator's allowlist). */
  artifactBuckets: readonly string[];
  metrics: ControllerMetrics;
  log: Logger;
  /** Test seam: runs after the CR is stored, before the message is deleted (e.g. to simulate a crash there). */
  afterCreate?: (name: string, message: QueueMessage) => void | Promise<void>;
}

const isFinished = (ej: EmbeddingJob) => ej.status?.phase === 'Succeeded' || ej.status?.phase === 'Failed';

/**
 * Long-polls the EMBED queue and turns each message into an EmbeddingJob. A message is deleted only after its CR is
 * stored (201, or 409 for a redelivery); an invalid one goes to the DLQ with the reason. While outstanding
 * EmbeddingJobs reach `maxOutstanding`, nothing is received: the backlog stays in SQS.
 */
export class Ingest {
  private readonly outstanding = new Set<string>();
  /** Created by us, not yet in the cache. */
  private readonly inflight = new Set<string>();

  private readonly store: KubeJobStore;

  constructor(private readonly d: IngestDeps) {
    this.store = new KubeJobStore({ client: d.ejClient, cache: d.ejs, namespace: d.namespace });
    const track = (ej: EmbeddingJob) => {
      this.inflight.delete(ej.metadata.name);
      if (isFinished(ej)) this.outstanding.delete(ej.metadata.name);
      else this.outstanding.add(ej.metadata.name);
      d.metrics.outstanding.set(this.outstanding.size);
    };
    d.ejs.on('add', track).on('update', track);
    d.ejs.on('delete', (ej) => {
      this.outstanding.delete(ej.metadata.name);
      d.metrics.outstanding.set(this.outstanding.size);
    });
  }

  /** Slots taken by receives in flight, so concurrent pollers never overshoot `maxOutstanding` together. */
  private reserved = 0;

  /** Not-finished EmbeddingJobs, including ones created but not yet seen by the cache and receives in flight. */
  outstandingCount(): number {
    return this.outstanding.size + this.inflight.size + this.reserved;
  }

  /** Received batches being turned into CRs, and batch deletes; both off the pollers' path, awaited by `start`. */
  private readonly handling = new Set<Promise<void>>();
  private readonly deleting = new Set<Promise<void>>();
  /** First error thrown while handling a batch (the `afterCreate` crash seam): ends ingest like a crash. */
  private failure: { err: unknown } | undefined;

  async start(signal: AbortSignal): Promise<void> {
    await this.d.ejs.waitForSync(signal);
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    const pollers = Array.from({ length: this.d.settings.pollers }, (_, i) =>
      this.poll(i, both, () => stop.abort()),
    );
    try {
      await Promise.all(pollers);
    } finally {
      while (this.handling.size > 0) await Promise.all(this.handling);
      this.flushDeletes();
      await Promise.all(this.deleting);
    }
    if (this.failure) throw this.failure.err;
  }

  /** Receive batches a poller may have in flight: it receives again while earlier creates are still running. */
  private static readonly BATCHES_PER_POLLER = 4;

  private async poll(id: number, signal: AbortSignal, fail: () => void): Promise<void> {
    const s = this.d.settings;
    const log = this.d.log.child({ poller: id });
    const mine = new Set<Promise<void>>();
    let errors = 0;
    while (!signal.aborted) {
      if (mine.size >= Ingest.BATCHES_PER_POLLER) {
        await Promise.race(mine);
        continue;
      }
      if (this.outstandingCount() >= s.maxOutstanding) {
        this.d.metrics.ingestPaused.set(1);
        await sleep(250, undefined, { signal }).catch(() => undefined);
        continue;
      }
      this.d.metrics.ingestPaused.set(0);
      let messages: QueueMessage[];
      const slots = Math.max(1, Math.min(10, s.maxOutstanding - this.outstandingCount()));
      this.reserved += slots;
      try {
        messages = await this.d.queue.receive({
          maxMessages: slots,
          waitSeconds: s.waitSeconds,
          visibilitySeconds: s.visibilitySeconds,
          signal,
        });
        errors = 0;
      } catch (err) {
        this.reserved -= slots;
        if (signal.aborted) break;
        errors++;
        const delay = backoffMs(errors, { baseMs: 500, maxMs: 30_000 });
        log.warn({ err, retryInMs: delay }, 'receive failed');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        continue;
      }
      // Not aborted by `signal`: messages already received are finished even during shutdown.
      const handled = Promise.all(messages.map((m) => this.handle(m, log)));
      this.reserved -= slots; // each handled message now counts as in flight until the cache shows its CR
      const batch: Promise<void> = handled
        .then(
          () => undefined,
          (err: unknown) => {
            this.failure ??= { err };
            fail();
          },
        )
        .finally(() => {
          mine.delete(batch);
          this.handling.delete(batch);
        });
      mine.add(batch);
      this.handling.add(batch);
    }
  }

  /** Deletes messages whose CR is stored. A failure is harmless: the message comes back and its create is a 409. */
  private toDelete: string[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  /**
   * Queues a stored message for deletion: deleted in a DeleteMessageBatch of up to 10, sent when 10 are queued or
   * 10 ms after the first, so a message leaves the queue as soon as its own CR is stored (not when the slowest create
   * of its receive is done; an SQS server that scans in-flight messages on every receive pays for each one left).
   */
  private queueDelete(handle: string): void {
    this.toDelete.push(handle);
    if (this.toDelete.length >= 10) this.flushDeletes();
    else this.flushTimer ??= setTimeout(() => this.flushDeletes(), 10);
  }

  private flushDeletes(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const handles = this.toDelete.splice(0);
    if (handles.length > 0) this.deleteStored(handles, this.d.log);
  }

  private deleteStored(handles: string[], log: Logger): void {
    const p = this.d.queue
      .deleteBatch(handles)
      .catch((err: unknown) => log.warn({ messages: handles.length, err }, 'could not delete messages'))
      .finally(() => this.deleting.delete(p));
    this.deleting.add(p);
  }

  /** Creates the message's CR; once it is stored, queues the message for deletion. */
  private async handle(message: QueueMessage, log: Logger): Promise<void> {
    const m = this.d.metrics.messages;
    m.inc({ result: 'received' });
    const admitted = admitEmbedMessage(message.body, this.d.artifactBuckets);
    if (!admitted.ok) {
      await this.deadLetter(message, admitted.reason, log);
      return;
    }
    const name = embeddingJobName(admitted.message);
    try {
      this.inflight.add(name);
      const { created } = await this.store.create(admitted.message, 'sqs');
      if (!created || this.store.get(name)) this.inflight.delete(name);
      m.inc({ result: created ? 'created' : 'duplicate' });
      if (!created) log.info({ ej: name, messageId: message.id }, 'EmbeddingJob already exists (redelivery)');
    } catch (err) {
      this.inflight.delete(name);
      if (isInvalid(err)) {
        await this.deadLetter(
          message,
          invalidMessageReason(`rejected by the API server: ${errorMessage(err)}`),
          log,
        );
        return;
      }
      m.inc({ result: 'failed' });
      log.error(
        { ej: name, messageId: message.id, err },
        'could not create EmbeddingJob; message left in the queue',
      );
      return;
    }
    await this.d.afterCreate?.(name, message);
    this.queueDelete(message.handle);
  }

  private async deadLetter(message: QueueMessage, reason: string, log: Logger): Promise<void> {
    try {
      await this.d.queue.deadLetter(message, reason);
      this.d.metrics.messages.inc({ result: 'dead_lettered' });
      log.warn({ messageId: message.id, reason }, 'message dead-lettered');
    } catch (err) {
      this.d.metrics.messages.inc({ result: 'failed' });
      log.error({ messageId: message.id, err }, 'could not dead-letter message; left in the queue');
    }
  }
}
