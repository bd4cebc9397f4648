import {
  DescribeStreamCommand,
  ExpiredIteratorException,
  GetShardIteratorCommand,
  type GetRecordsCommand,
} from '@aws-sdk/client-dynamodb-streams';
import type { StreamsApi } from '../../core/aws/dynamo-stream-feed.js';

/** A fake DynamoDB Streams API: shards with parents, closed or open, iterators that can be made to expire. */
export class FakeStreams implements StreamsApi {
  shards: { id: string; parent?: string; records: string[]; closed: boolean }[] = [];
  expireNext = 0;
  calls: string[] = [];
  private iterators = new Map<string, { shard: string; pos: number }>();
  private n = 0;

  async send(command: DescribeStreamCommand | GetShardIteratorCommand | GetRecordsCommand): Promise<unknown> {
    if (command instanceof DescribeStreamCommand) {
      return {
        StreamDescription: {
          Shards: this.shards.map((s) => ({
            ShardId: s.id,
            ...(s.parent ? { ParentShardId: s.parent } : {}),
            SequenceNumberRange: { StartingSequenceNumber: '0' },
          })),
        },
      };
    }
    if (command instanceof GetShardIteratorCommand) {
      const shard = this.shards.find((s) => s.id === command.input.ShardId)!;
      let pos = 0;
      if (command.input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER') {
        pos = shard.records.indexOf(command.input.SequenceNumber!) + 1;
      }
      const it = `it-${this.n++}`;
      this.iterators.set(it, { shard: shard.id, pos });
      return { ShardIterator: it };
    }
    const it = this.iterators.get(command.input.ShardIterator!)!;
    if (this.expireNext > 0) {
      this.expireNext--;
      throw new ExpiredIteratorException({ message: 'expired', $metadata: {} });
    }
    const shard = this.shards.find((s) => s.id === it.shard)!;
    const limit = command.input.Limit ?? 1000;
    const recs = shard.records.slice(it.pos, it.pos + limit);
    this.calls.push(`${shard.id}:${recs.join(',')}`);
    const nextPos = it.pos + recs.length;
    const done = shard.closed && nextPos >= shard.records.length;
    const next = `it-${this.n++}`;
    if (!done) this.iterators.set(next, { shard: shard.id, pos: nextPos });
    return {
      Records: recs.map((seq) => ({
        eventID: `ev-${seq}`,
        eventName: 'INSERT',
        dynamodb: {
          SequenceNumber: seq,
          Keys: { PK: { S: 'IMAGE#x' }, SK: { S: `RECEIPT#00001#PLACE` } },
          NewImage: {
            PK: { S: 'IMAGE#x' },
            SK: { S: `RECEIPT#00001#PLACE` },
            merchant_name: { S: `m${seq}` },
          },
        },
      })),
      ...(done ? {} : { NextShardIterator: next }),
    };
  }
}
