import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../backoff.js';
import { TransientError } from '../errors.js';
import type { OutgoingMessage, Queue, QueueMessage, ReceiveOptions } from '../ports/queue.js';
import { clientConfig, type AwsSettings } from './config.js';

const MAX_BATCH_ENTRIES = 10;
const MAX_BATCH_BYTES = 256 * 1024;
/** Between retries of a batch's failed entries (attempt counts from 1: 200 ms, 400 ms, … 5 s). */
const SQS_BATCH_RETRY = { baseMs: 100, maxMs: 5000 };

/** Queue port over SQS. Sends retry failed entries with backoff; nothing is dropped silently. */
export class SqsQueue implements Queue {
  readonly name: string;
  private readonly client: SQSClient;

  constructor(
    readonly url: string,
    settings: AwsSettings,
    private readonly deadLetterUrl?: string,
    client?: SQSClient,
  ) {
    this.client = client ?? new SQSClient(clientConfig(settings));
    this.name = url.split('/').pop() ?? url;
  }

  async receive(options: ReceiveOptions = {}): Promise<QueueMessage[]> {
    const res = await this.client.send(
      new ReceiveMessageCommand({
        QueueUrl: this.url,
        MaxNumberOfMessages: Math.min(options.maxMessages ?? 10, 10),
        WaitTimeSeconds: options.waitSeconds ?? 20,
        ...(options.visibilitySeconds === undefined ? {} : { VisibilityTimeout: options.visibilitySeconds }),
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
      }),
      { abortSignal: options.signal },
    );
    return (res.Messages ?? []).map((m) => ({
      id: m.MessageId!,
      handle: m.ReceiptHandle!,
      body: m.Body ?? '',
      attributes: Object.fromEntries(
        Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']),
      ),
      receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
      ...(m.Attributes?.SentTimestamp ? { sentAt: Number(m.Attributes.SentTimestamp) } : {}),
    }));
  }

  async send(messages: OutgoingMessage[]): Promise<void> {
    await sendAll(this.client, this.url, messages);
  }

  async delete(handle: string): Promise<void> {
    await this.client.send(new DeleteMessageCommand({ QueueUrl: this.url, ReceiptHandle: handle }));
  }

  /**
   * DeleteMessageBatch in chunks of 10 (concurrently); failed entries are retried with backoff, except sender faults
   * (e.g. an expired receipt handle), which no retry fixes. Rejects naming what was left.
   */
  async deleteBatch(handles: string[], maxAttempts = 5): Promise<void> {
    const chunks: string[][] = [];
    for (let i = 0; i < handles.length; i += MAX_BATCH_ENTRIES)
      chunks.push(handles.slice(i, i + MAX_BATCH_ENTRIES));
    const left = await Promise.all(
      chunks.map(async (chunk) => {
        let pending = chunk.map((h, i) => ({ Id: String(i), h }));
        const lost: { reason: string }[] = [];
        for (let attempt = 1; ; attempt++) {
          let failed: { Id: string; reason: string; senderFault: boolean }[];
          try {
            const res = await this.client.send(
              new DeleteMessageBatchCommand({
                QueueUrl: this.url,
                Entries: pending.map(({ Id, h }) => ({ Id, ReceiptHandle: h })),
              }),
            );
            failed = (res.Failed ?? []).map((f) => ({
              Id: f.Id!,
              reason: `${f.Code}: ${f.Message}`,
              senderFault: f.SenderFault === true,
            }));
          } catch (err) {
            failed = pending.map(({ Id }) => ({ Id, reason: String(err), senderFault: false }));
          }
          lost.push(...failed.filter((f) => f.senderFault));
          const retry = failed.filter((f) => !f.senderFault);
          if (retry.length === 0) return lost;
          if (attempt >= maxAttempts) return [...lost, ...retry];
          const ids = new Set(retry.map((f) => f.Id));
          pending = pending.filter((p) => ids.has(p.Id));
          await sleep(backoffMs(attempt, SQS_BATCH_RETRY));
        }
      }),
    );
    const failed = left.flat();
    if (failed.length > 0)
      throw new TransientError(
        `${failed.length} message(s) not deleted from ${this.name}: ${failed[0]!.reason}`,
        {
          url: this.url,
        },
      );
  }

  async changeVisibility(handle: string, seconds: number): Promise<void> {
    await this.client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.url,
        ReceiptHandle: handle,
        VisibilityTimeout: seconds,
      }),
    );
  }

  async deadLetter(message: QueueMessage, reason: string): Promise<void> {
    if (!this.deadLetterUrl)
      throw new TransientError(`queue ${this.name} has no dead-letter queue configured`);
    await sendAll(this.client, this.deadLetterUrl, [
      {
        body: message.body,
        attributes: {
          ...message.attributes,
          dlq_reason: reason.slice(0, 1000) || 'unknown',
          dlq_source_queue: this.name,
          dlq_original_message_id: message.id,
          dlq_receive_count: String(message.receiveCount),
        },
      },
    ]);
    await this.delete(message.handle);
  }

  async depth(): Promise<{ visible: number; inFlight: number }> {
    const res = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}

/** SendMessageBatch in chunks of ≤10 entries / ≤256 KiB, retrying failed entries until all are accepted. */
async function sendAll(
  client: SQSClient,
  url: string,
  messages: OutgoingMessage[],
  maxAttempts = 8,
): Promise<void> {
  for (const chunk of chunks(messages)) {
    let pending = chunk.map((m) => ({ Id: randomUUID(), m }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      let failed: { Id: string; reason: string }[];
      try {
        const res = await client.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: pending.map(({ Id, m }) => ({
              Id,
              MessageBody: m.body,
              MessageAttributes: toAttributes(m.attributes ?? {}),
            })),
          }),
        );
        failed = (res.Failed ?? []).map((f) => ({ Id: f.Id!, reason: `${f.Code}: ${f.Message}` }));
      } catch (err) {
        failed = pending.map(({ Id }) => ({ Id, reason: String(err) }));
      }
      if (failed.length === 0) break;
      if (attempt >= maxAttempts) {
        throw new TransientError(`${failed.length} message(s) not accepted by ${url}: ${failed[0]!.reason}`, {
          url,
        });
      }
      const failedIds = new Set(failed.map((f) => f.Id));
      pending = pending.filter((p) => failedIds.has(p.Id));
      await sleep(backoffMs(attempt, SQS_BATCH_RETRY));
    }
  }
}

function* chunks(messages: OutgoingMessage[]): Generator<OutgoingMessage[]> {
  let chunk: OutgoingMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.body) + JSON.stringify(m.attributes ?? {}).length;
    if (chunk.length === MAX_BATCH_ENTRIES || (chunk.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(m);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function toAttributes(attrs: Record<string, string>): Record<string, MessageAttributeValue> | undefined {
  const entries = Object.entries(attrs).filter(([, v]) => v !== '');
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map(([k, v]) => [k, { DataType: 'String', StringValue: v }]));
}
