import { assertArtifactLocation, type ArtifactLocation } from '../contracts/artifact-location.js';
import { EmbedMessage } from '../contracts/embed-message.js';
import { specFromMessage } from '../contracts/embedding-job.js';
import { describeIssue } from '../contracts/validation.js';
import { errorMessage } from '../errors.js';

/**
 * The ingest rule of both modes: an EMBED message body becomes a job, or goes to the DLQ with this reason. The
 * reason always starts with `InvalidMessage: ` (dashboards and the DLQ tooling group by it).
 */
export type Admission = { ok: true; message: EmbedMessage } | { ok: false; reason: string };

/**
 * `artifactBuckets` is the allowlist of buckets a message may name (the controller's configured buckets); without
 * one (local mode, whose bucket is fixed) only the shape of the bucket and keys is checked.
 */
export function admitEmbedMessage(body: string, artifactBuckets?: readonly string[]): Admission {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return invalid(`body is not JSON: ${errorMessage(err)}`);
  }
  try {
    // Where the artifacts are is checked first, with its own wording: it is the check that keeps a message from
    // pointing a worker at another bucket or outside its keys, and its reason says exactly which rule refused it.
    const loc = artifactLocationOf(json);
    if (loc) assertArtifactLocation(loc, artifactBuckets, FIELDS);
  } catch (err) {
    return invalid(errorMessage(err));
  }
  const parsed = EmbedMessage.safeParse(json);
  if (!parsed.success) {
    const { field, message } = describeIssue(parsed.error);
    return invalid(`${field ? `${field}: ` : ''}${message}`);
  }
  try {
    specFromMessage(parsed.data); // the job's spec must be valid too, or the store would refuse every redelivery
  } catch (err) {
    return invalid(errorMessage(err));
  }
  return { ok: true, message: parsed.data };
}

export const invalidMessageReason = (why: string): string => `InvalidMessage: ${why}`;

const invalid = (why: string): Admission => ({ ok: false, reason: invalidMessageReason(why) });

const FIELDS = { bucket: 'artifacts_bucket', linesKey: 'lines_key', wordsKey: 'words_key' };

/** The bucket and keys a message names, when it names all three as strings (the schema reports anything else). */
function artifactLocationOf(json: unknown): ArtifactLocation | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const m = json as Record<string, unknown>;
  const [bucket, linesKey, wordsKey] = [m.artifacts_bucket, m.lines_key, m.words_key];
  return typeof bucket === 'string' && typeof linesKey === 'string' && typeof wordsKey === 'string'
    ? { bucket, linesKey, wordsKey }
    : undefined;
}
