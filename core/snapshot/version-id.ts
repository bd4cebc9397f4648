import { PipelineError } from '../errors.js';

/**
 * Version ids become path segments (`versions/{id}`, scratch `lines-{id}`) and S3 keys. Ids read from `CURRENT` or
 * the S3 pointer are data, not trusted names: `x/../../../words` once made an install replace the whole `words`
 * collection. Every id read or written goes through here (issue 18 item 6).
 */
export const VERSION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A version id that is not a plain name; `source` says where it was read (a CURRENT path, an s3:// pointer). */
export class InvalidVersionIdError extends PipelineError {
  constructor(
    readonly source: string,
    readonly version: string,
  ) {
    super(
      'SnapshotDamaged',
      `${source} names version ${JSON.stringify(version.slice(0, 200))}, which is not a valid version id (${VERSION_ID_PATTERN.source})`,
      { source, version: version.slice(0, 200) },
    );
  }
}

export function isVersionId(v: string): boolean {
  // `..` alone cannot match (it starts with '.'), but `a..b` is a harmless single segment; no '/' ever matches.
  return VERSION_ID_PATTERN.test(v);
}

/** Returns `v` or throws InvalidVersionIdError naming `source`. */
export function checkVersionId(v: string, source: string): string {
  if (!isVersionId(v)) throw new InvalidVersionIdError(source, v);
  return v;
}
