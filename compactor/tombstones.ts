import type { Ledger } from '../core/ports/ledger.js';

/**
 * Receipt tombstones: a receipt delete only removes the vectors already merged, so a run created before the delete
 * but merged after it would bring the receipt back. The compactor records each receipt delete it applies in the
 * ledger (`RECEIPT#{id}#TOMBSTONE`: no entity type of the change feed, so it emits nothing), and a run created
 * before the tombstone's time is not merged. A receipt re-created later gets new runs, created after the tombstone.
 */
const pad = (n: number) => String(n).padStart(5, '0');

export function tombstoneKey(imageId: string, receiptId: number): { PK: string; SK: string } {
  return { PK: `IMAGE#${imageId}`, SK: `RECEIPT#${pad(receiptId)}#TOMBSTONE` };
}

/** Records (or moves forward) the receipt's tombstone; `at` is the delete's stream time. */
export async function writeTombstone(
  ledger: Ledger,
  imageId: string,
  receiptId: number,
  at: string,
): Promise<void> {
  const key = tombstoneKey(imageId, receiptId);
  const prior = await ledger.getItem(key);
  if (prior && typeof prior.deleted_at === 'string' && Date.parse(prior.deleted_at) >= Date.parse(at)) return;
  await ledger.putItem({
    ...key,
    TYPE: 'RECEIPT_TOMBSTONE',
    image_id: imageId,
    receipt_id: receiptId,
    deleted_at: at,
  });
}

/** When the receipt was deleted after a run created at `createdAt`: the delete time; otherwise undefined. */
export async function deletedSince(
  ledger: Ledger,
  imageId: string,
  receiptId: number,
  createdAt: string,
): Promise<string | undefined> {
  const t = await ledger.getItem(tombstoneKey(imageId, receiptId));
  const at = typeof t?.deleted_at === 'string' ? t.deleted_at : undefined;
  if (at === undefined) return undefined;
  return Date.parse(at) >= Date.parse(createdAt) ? at : undefined;
}
