import { describe, expect, it } from 'vitest';
import {
  allowedBuckets,
  assertArtifactLocation,
  bucketNameProblem,
  objectKeyProblem,
} from '../../../../core/contracts/artifact-location.js';
import { InputError } from '../../../../core/errors.js';
import { parseControllerConfig } from '../../../../controller/config.js';

const FIELDS = { bucket: 'spec.artifactsBucket', linesKey: 'spec.linesKey', wordsKey: 'spec.wordsKey' };
const ok = { bucket: 'receipt-artifacts', linesKey: 'r/1/lines.ndjson', wordsKey: 'r/1/words.ndjson' };

describe('artifact location (issue 18 item 3)', () => {
  it.each([
    'arn:aws:s3:us-east-1:999999999999:accesspoint/attacker',
    'arn:aws:s3-object-lambda:us-east-1:999999999999:accesspoint/x',
    'evil.example.com/x',
    'UPPER',
    'a..b',
    '-lead',
    'ab',
    'b'.repeat(64),
  ])('refuses bucket %s', (bucket) => {
    expect(bucketNameProblem(bucket)).toBeDefined();
  });

  it.each(['receipt-artifacts', 'artifacts-worker-abc123', 'my.bucket.name', 'abc'])(
    'accepts bucket %s',
    (b) => {
      expect(bucketNameProblem(b)).toBeUndefined();
    },
  );

  it.each(['', '/abs', '..', 'a/../b', 'a/./b', 'a//b', 'a/', 'k'.repeat(1025), 'é'.repeat(513)])(
    'refuses key %#',
    (key) => {
      expect(objectKeyProblem(key)).toBeDefined();
    },
  );

  it.each(['r/1/lines.ndjson', '.hidden/x', '..a/b', 'a/...', 'k'.repeat(1024)])('accepts key %#', (key) => {
    expect(objectKeyProblem(key)).toBeUndefined();
  });

  it('an allowed bucket passes; another one, or a bad key, is a BadInput InputError naming the field', () => {
    expect(() => assertArtifactLocation(ok, ['receipt-artifacts'], FIELDS)).not.toThrow();
    const cases: [Partial<typeof ok>, string][] = [
      [{ bucket: 'other-bucket' }, 'spec.artifactsBucket'],
      [{ bucket: 'arn:aws:s3:us-east-1:1:accesspoint/a' }, 'spec.artifactsBucket'],
      [{ linesKey: 'a/../b' }, 'spec.linesKey'],
      [{ wordsKey: 'w'.repeat(2000) }, 'spec.wordsKey'],
    ];
    for (const [over, field] of cases) {
      let err: unknown;
      try {
        assertArtifactLocation({ ...ok, ...over }, ['receipt-artifacts'], FIELDS);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect(err).toMatchObject({ reason: 'BadInput', where: { field } });
      expect((err as Error).message).toContain(`field ${field}: `);
    }
    // Without an allowlist (local mode) only the shape is checked.
    expect(() => assertArtifactLocation({ ...ok, bucket: 'other-bucket' }, undefined, FIELDS)).not.toThrow();
  });

  it('the controller needs ARTIFACTS_BUCKET and takes ARTIFACTS_BUCKETS_ALLOWED as an allowlist', () => {
    const env = {
      NAMESPACE: 'receipts',
      EMBED_QUEUE_URL: 'http://127.0.0.1:5000/123/embed',
      EMBED_DLQ_URL: 'http://127.0.0.1:5000/123/embed-dlq',
      AWS_REGION: 'us-east-1',
    };
    expect(() => parseControllerConfig(env)).toThrow(/ARTIFACTS_BUCKET/);
    expect(() => parseControllerConfig({ ...env, ARTIFACTS_BUCKET: 'arn:aws:s3:::x' })).toThrow(
      /ARTIFACTS_BUCKET/,
    );
    const c = parseControllerConfig({
      ...env,
      ARTIFACTS_BUCKET: 'main-b',
      ARTIFACTS_BUCKETS_ALLOWED: ' eu-b, us-b ,',
    });
    expect(c.artifactBuckets).toEqual(['main-b', 'eu-b', 'us-b']);
    expect(allowedBuckets(undefined, undefined)).toEqual([]);
  });
});
