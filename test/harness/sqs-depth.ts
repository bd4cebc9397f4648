import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';

/**
 * Messages in a queue, visible or in flight. moto evaluates ApproximateNumberOfMessages before
 * ApproximateNumberOfMessagesNotVisible, so a message whose visibility timeout ends between the two is counted in
 * neither: a 0 is read a second time before it is believed.
 */
export async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  const read = async () => {
    const res = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  };
  const depth = await read();
  return depth === 0 ? read() : depth;
}
