import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { CompactionRunItem, parseRunItem, runKey } from '../contracts/compaction-run.js';
import type { Collection } from '../contracts/ids.js';
import type { CollectionOutcome, Item, Ledger, RunIds } from '../ports/ledger.js';
import { clientConfig, type AwsSettings } from './config.js';

/** Ledger port over one DynamoDB single table (PK/SK strings, stream NEW_AND_OLD_IMAGES). */
export class DynamoLedger implements Ledger {
  readonly client: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    readonly table: string,
    settings: AwsSettings,
    client?: DynamoDBClient,
  ) {
    this.client = client ?? new DynamoDBClient(clientConfig(settings));
    this.doc = DynamoDBDocumentClient.from(this.client, { marshallOptions: { removeUndefinedValues: true } });
  }

  async putRunIfAbsent(run: CompactionRunItem): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({ TableName: this.table, Item: run, ConditionExpression: 'attribute_not_exists(PK)' }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async getRun(imageId: string, receiptId: number, runId: string): Promise<CompactionRunItem | undefined> {
    return parseRunItem(await this.getItem(runKey(imageId, receiptId, runId)));
  }

  async setRunCollection(key: RunIds, collection: Collection, outcome: CollectionOutcome): Promise<void> {
    const now = new Date().toISOString();
    const names: Record<string, string> = { '#state': `${collection}_state`, '#updated': 'updated_at' };
    const values: Record<string, unknown> = { ':state': outcome.state, ':now': now };
    const sets = ['#state = :state', '#updated = :now'];
    const stamp = outcome.state === 'PROCESSING' ? 'started_at' : 'finished_at';
    names['#stamp'] = `${collection}_${stamp}`;
    sets.push('#stamp = :now');
    if (outcome.mergedVectors !== undefined) {
      names['#merged'] = `${collection}_merged_vectors`;
      values[':merged'] = outcome.mergedVectors;
      sets.push('#merged = :merged');
    }
    if (outcome.error !== undefined) {
      names['#error'] = `${collection}_error`;
      values[':error'] = outcome.error;
      sets.push('#error = :error');
    }
    // Only this collection's fields are written; a COMPLETED collection never moves back.
    const guardCompleted = outcome.state !== 'COMPLETED';
    if (guardCompleted) values[':completed'] = 'COMPLETED';
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: runKey(key.imageId, key.receiptId, key.runId),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: guardCompleted
            ? 'attribute_exists(PK) AND #state <> :completed'
            : 'attribute_exists(PK)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException && guardCompleted) return;
      throw err;
    }
  }

  async putItem(item: Item): Promise<void> {
    await this.doc.send(new PutCommand({ TableName: this.table, Item: item }));
  }

  async deleteItem(key: { PK: string; SK: string }): Promise<void> {
    await this.doc.send(new DeleteCommand({ TableName: this.table, Key: key }));
  }

  async getItem(key: { PK: string; SK: string }): Promise<Item | undefined> {
    const res = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    return res.Item as Item | undefined;
  }

  /** A Scan with a filter (no index fits yet): reads the whole table per call. See `scanPendingRuns`. */
  async pendingRuns(
    olderThan: Date,
    limit: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<CompactionRunItem[]> {
    return scanPendingRuns(this.doc, this.table, olderThan, limit, options);
  }

  async query(pk: string, skPrefix: string): Promise<Item[]> {
    const out: Item[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const res = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'PK = :pk AND begins_with(SK, :sk)',
          ExpressionAttributeValues: { ':pk': pk, ':sk': skPrefix },
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      out.push(...((res.Items ?? []) as Item[]));
      start = res.LastEvaluatedKey;
    } while (start);
    return out;
  }
}

/**
 * CompactionRun rows still PENDING in some collection and created before `olderThan`.
 *
 * A Scan with a filter: the single table has no index on TYPE / state / created_at (see `ensureTable`), so every
 * call reads the whole table and pays for every item read, matching or not (eventually consistent: 0.5 read units
 * per 4 KB; a 1 GB table ≈ 131,000 read units per sweep). The sweeper runs it every `STREAM_SWEEP_INTERVAL_MS`
 * (10 min), so keep that interval long on big tables, or add a sparse GSI (e.g. on a `pending_since` attribute
 * that runs carry only while PENDING) and switch this to a Query. Scan order is hash order, not age: when more than
 * `limit` runs match, the ones returned are the first found, sorted oldest first among themselves.
 */
export async function scanPendingRuns(
  doc: DynamoDBDocumentClient,
  table: string,
  olderThan: Date,
  limit: number,
  options: { signal?: AbortSignal } = {},
): Promise<CompactionRunItem[]> {
  const out: CompactionRunItem[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await doc.send(
      new ScanCommand({
        TableName: table,
        FilterExpression:
          '#type = :run AND created_at < :before AND (lines_state = :pending OR words_state = :pending)',
        ExpressionAttributeNames: { '#type': 'TYPE' },
        ExpressionAttributeValues: {
          ':run': 'COMPACTION_RUN',
          ':before': olderThan.toISOString(),
          ':pending': 'PENDING',
        },
        ExclusiveStartKey: start,
      }),
      options.signal ? { abortSignal: options.signal } : {},
    );
    for (const item of res.Items ?? []) {
      const parsed = CompactionRunItem.safeParse(item);
      if (parsed.success) out.push(parsed.data); // a malformed row cannot be announced anyway
      if (out.length >= limit) break;
    }
    start = res.LastEvaluatedKey;
  } while (start && out.length < limit);
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
}

/** Creates the single table with its stream if it does not exist (tests, local clusters, first installs). */
export async function ensureTable(client: DynamoDBClient, table: string): Promise<{ streamArn?: string }> {
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'PK', AttributeType: 'S' },
          { AttributeName: 'SK', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'PK', KeyType: 'HASH' },
          { AttributeName: 'SK', KeyType: 'RANGE' },
        ],
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  const desc = await client.send(new DescribeTableCommand({ TableName: table }));
  return { streamArn: desc.Table?.LatestStreamArn };
}
