import type { ObjectStore } from '../ports/object-store.js';
import { artifactKeys, type GeneratedReceipt } from './generator.js';

export * from './generator.js';
export { MERCHANTS, type Merchant, type Branch } from './merchants.js';

/** Uploads a generated receipt's NDJSON files; returns the EMBED message that points at them. */
export async function putReceipt(
  store: ObjectStore,
  bucket: string,
  r: GeneratedReceipt,
): Promise<{
  image_id: string;
  receipt_id: number;
  artifacts_bucket: string;
  lines_key: string;
  words_key: string;
}> {
  const { linesKey, wordsKey } = artifactKeys(r.imageId, r.receiptId);
  const contentType = 'application/x-ndjson';
  await Promise.all([
    store.put(bucket, linesKey, r.linesNdjson, { contentType }),
    store.put(bucket, wordsKey, r.wordsNdjson, { contentType }),
  ]);
  return {
    image_id: r.imageId,
    receipt_id: r.receiptId,
    artifacts_bucket: bucket,
    lines_key: linesKey,
    words_key: wordsKey,
  };
}
