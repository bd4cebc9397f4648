import type { ObjectStore } from '../ports/object-store.js';
import { embedMessageFor, type GeneratedReceipt } from './generator.js';

export * from './generator.js';
export { MERCHANTS, type Merchant, type Branch } from './merchants.js';

/** Uploads a generated receipt's NDJSON files; returns the EMBED message that points at them. */
export async function putReceipt(
  store: ObjectStore,
  bucket: string,
  r: GeneratedReceipt,
): Promise<ReturnType<typeof embedMessageFor>> {
  const message = embedMessageFor(r, bucket);
  const contentType = 'application/x-ndjson';
  await Promise.all([
    store.put(bucket, message.lines_key, r.linesNdjson, { contentType }),
    store.put(bucket, message.words_key, r.wordsNdjson, { contentType }),
  ]);
  return message;
}
