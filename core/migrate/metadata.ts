import type { Metadata } from '../ports/vector-store.js';
import type { DirMetadataValue } from '../chroma/dir-reader.js';

/**
 * The original's metadata in this project's shape. Chroma 1.5.x stores array values; this project's Chroma (1.0.x)
 * and its VectorStore take scalars only, so the two label arrays become the comma-joined strings this project writes
 * itself (core/receipt/embedding-inputs.ts, docs/adr/0010): `valid_labels_array` → `valid_labels`,
 * `invalid_labels_array` → `invalid_labels` (omitted when empty, as here). Any other array is kept under its key as
 * its JSON text. Everything else is copied as it is (era-A records keep `receipt_id` as a string). Pure.
 */
export const ARRAY_KEYS: Record<string, string> = {
  valid_labels_array: 'valid_labels',
  invalid_labels_array: 'invalid_labels',
};

export function migrateMetadata(m: Record<string, DirMetadataValue> | null): Metadata {
  const out: Metadata = {};
  for (const [k, v] of Object.entries(m ?? {})) {
    if (!Array.isArray(v)) out[k] = v;
    else if (ARRAY_KEYS[k]) {
      if (v.length) out[ARRAY_KEYS[k]] = v.join(',');
    } else out[k] = JSON.stringify(v);
  }
  return out;
}
