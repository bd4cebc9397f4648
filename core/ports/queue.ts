/** A message queue with visibility timeouts and a dead-letter queue (SQS in the cloud, SQLite locally). */
export interface QueueMessage {
  /** Stable id of the message (SQS MessageId). */
  id: string;
  /** Handle for delete / visibility changes of this delivery (SQS ReceiptHandle). */
  handle: string;
  body: string;
  attributes: Record<string, string>;
  /** How many times it was received, this delivery included. */
  receiveCount: number;
  /** When it was first sent (ms since epoch), when the queue knows. */
  sentAt?: number;
}

export interface OutgoingMessage {
  body: string;
  attributes?: Record<string, string>;
}

export interface ReceiveOptions {
  maxMessages?: number;
  waitSeconds?: number;
  visibilitySeconds?: number;
  signal?: AbortSignal;
}

export interface Queue {
  readonly name: string;
  receive(options?: ReceiveOptions): Promise<QueueMessage[]>;
  /** Sends every message; resolves only when all were accepted (failed entries are retried, never dropped). */
  send(messages: OutgoingMessage[]): Promise<void>;
  delete(handle: string): Promise<void>;
  /** Deletes several deliveries in as few requests as the queue allows; rejects if any could not be deleted. */
  deleteBatch(handles: string[]): Promise<void>;
  changeVisibility(handle: string, seconds: number): Promise<void>;
  /** Moves a message to the dead-letter queue with the reason as an attribute, then deletes it here. */
  deadLetter(message: QueueMessage, reason: string): Promise<void>;
  /** Visible + in-flight message counts (what KEDA scales on). */
  depth(): Promise<{ visible: number; inFlight: number }>;
}
