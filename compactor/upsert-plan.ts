import type { Metadata, VectorRecord } from '../core/ports/vector-store.js';
import { sameMetadata, stored } from './enrich.js';

/** A record as read back from Chroma: the embedding only when asked for. */
export type StoredRecord = Omit<VectorRecord, 'embedding'> & { embedding?: Float32Array };

export interface MetadataUpdate {
  id: string;
  metadata: Metadata;
}

/** How records reach the working copy (pure): new ids added, metadata-only changes updated, the rest replaced. */
export interface Upserts {
  toAdd: VectorRecord[];
  /** Deleted, then added again. */
  toReplace: VectorRecord[];
  toUpdate: MetadataUpdate[];
  unchanged: number;
}

/** Incoming records against the stored ones: add new ids, skip unchanged, update metadata, else replace. */
export function planUpserts(records: Iterable<VectorRecord>, existing: Map<string, StoredRecord>): Upserts {
  const out: Upserts = { toAdd: [], toReplace: [], toUpdate: [], unchanged: 0 };
  for (const r of records) {
    const ex = existing.get(r.id);
    if (!ex) out.toAdd.push(r);
    else if (ex.embedding && sameVector(ex.embedding, r.embedding) && ex.document === r.document) {
      if (sameMetadata(ex.metadata, r.metadata)) out.unchanged++;
      else if (keepsKeys(ex.metadata, r.metadata))
        out.toUpdate.push({ id: r.id, metadata: stored(r.metadata) });
      else out.toReplace.push(r);
    } else out.toReplace.push(r);
  }
  return out;
}

/**
 * Stored records whose metadata should now be `desired(record)` (their receipt's place, labels or sections changed):
 * unchanged ones are left alone, the rest updated or, when a key goes away, replaced with the same vector.
 */
export function planRestamp(
  current: Iterable<StoredRecord>,
  desired: (r: StoredRecord) => Metadata,
): Pick<Upserts, 'toReplace' | 'toUpdate'> {
  const out: Pick<Upserts, 'toReplace' | 'toUpdate'> = { toReplace: [], toUpdate: [] };
  for (const ex of current) {
    const want = desired(ex);
    if (sameMetadata(ex.metadata, want)) continue;
    if (keepsKeys(ex.metadata, want)) out.toUpdate.push({ id: ex.id, metadata: stored(want) });
    else out.toReplace.push({ id: ex.id, document: ex.document, metadata: want, embedding: ex.embedding! });
  }
  return out;
}

function sameVector(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An update can only set keys (Chroma merges metadata and ignores nulls), so a removed key needs delete + add. */
function keepsKeys(before: Metadata | null, after: Metadata): boolean {
  const next = stored(after);
  return Object.keys(stored(before ?? {})).every((k) => k in next);
}
