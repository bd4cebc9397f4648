import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { SqsQueue } from '../../../../core/aws/sqs-queue.js';

type Entry = { Id: string; ReceiptHandle: string };
type Reply = (entries: Entry[]) => {
  Failed?: { Id: string; Code: string; Message: string; SenderFault: boolean }[];
};

function queueWith(replies: Reply[]) {
  const calls: string[][] = [];
  const client = {
    send: async (cmd: { input: { Entries: Entry[] } }) => {
      calls.push(cmd.input.Entries.map((e) => e.ReceiptHandle));
      return (replies.shift() ?? (() => ({})))(cmd.input.Entries);
    },
  } as unknown as SQSClient;
  const settings = { region: 'us-east-1', endpoint: 'http://127.0.0.1:1' };
  return { queue: new SqsQueue('http://127.0.0.1:1/000000000000/q', settings, undefined, client), calls };
}

describe('SqsQueue.deleteBatch', () => {
  it('sends chunks of 10', async () => {
    const { queue, calls } = queueWith([]);
    await queue.deleteBatch(Array.from({ length: 23 }, (_, i) => `h${i}`));
    expect(calls.map((c) => c.length).sort()).toEqual([10, 10, 3]);
  });

  it('retries only the entries that failed', async () => {
    const { queue, calls } = queueWith([
      (e) => ({ Failed: [{ Id: e[1]!.Id, Code: 'InternalError', Message: 'x', SenderFault: false }] }),
    ]);
    await queue.deleteBatch(['a', 'b', 'c']);
    expect(calls).toEqual([['a', 'b', 'c'], ['b']]);
  });

  it('rejects on a sender fault without retrying it', async () => {
    const { queue, calls } = queueWith([
      (e) => ({
        Failed: [{ Id: e[0]!.Id, Code: 'ReceiptHandleIsInvalid', Message: 'old', SenderFault: true }],
      }),
    ]);
    await expect(queue.deleteBatch(['a', 'b'])).rejects.toThrow(
      /1 message\(s\) not deleted.*ReceiptHandleIsInvalid/,
    );
    expect(calls).toEqual([['a', 'b']]);
  });
});
