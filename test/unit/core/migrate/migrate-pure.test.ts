import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { PickleError, readPickle } from '../../../../core/chroma/pickle.js';
import { parseSourceUri } from '../../../../core/migrate/lambda-snapshot.js';
import { migrateMetadata } from '../../../../core/migrate/metadata.js';
import { UsageError } from '../../../../core/errors.js';

/** A pickle written by Python's own pickle module at `protocol`. */
const pickled = (expr: string, protocol: number) =>
  execFileSync('python3', [
    '-c',
    `import pickle, sys; sys.stdout.buffer.write(pickle.dumps(${expr}, protocol=${protocol}))`,
  ]);

describe('readPickle (the subset Chroma writes as index_metadata.pickle)', () => {
  for (const protocol of [2, 3, 4, 5]) {
    it(`protocol ${protocol}: a dict of id → label maps, None, big and negative ints, floats`, () => {
      const v = readPickle(
        pickled(
          "{'dimensionality': None, 'total_elements_added': 70000, 'id_to_label': {'a#1': 1, 'b': 300, 'c': 2**40}, 'neg': -5, 'f': 0.25, 'l': [1, 'x', True]}",
          protocol,
        ),
        'test',
      ) as Map<string, unknown>;
      expect(v.get('dimensionality')).toBeNull();
      expect(v.get('total_elements_added')).toBe(70000);
      expect([...(v.get('id_to_label') as Map<string, number>)]).toEqual([
        ['a#1', 1],
        ['b', 300],
        ['c', 2 ** 40],
      ]);
      expect(v.get('neg')).toBe(-5);
      expect(v.get('f')).toBe(0.25);
      expect(v.get('l')).toEqual([1, 'x', true]);
    });
  }
  it('refuses anything that would build objects (GLOBAL/REDUCE), naming the opcode', () => {
    expect(() => readPickle(pickled('__import__("collections").OrderedDict()', 2), 'x.pickle')).toThrow(
      PickleError,
    );
    expect(() => readPickle(Buffer.from([0x80, 0x03, 0x7d]), 'x.pickle')).toThrow(/truncated/);
  });
});

describe('migrateMetadata', () => {
  it('label arrays become the comma-joined strings of this project; other values unchanged', () => {
    expect(
      migrateMetadata({
        receipt_id: '3',
        valid_labels_array: ['DATE', 'TAX'],
        invalid_labels_array: [],
        other: [1, 2],
        x: 0.5,
        ok: true,
      }),
    ).toEqual({ receipt_id: '3', valid_labels: 'DATE,TAX', other: '[1,2]', x: 0.5, ok: true });
    expect(migrateMetadata(null)).toEqual({});
  });
});

describe('parseSourceUri', () => {
  it('a prefix with or without a trailing slash is the same', () => {
    expect(parseSourceUri('s3://old-bucket')).toEqual({ bucket: 'old-bucket', prefix: '' });
    expect(parseSourceUri('s3://old-bucket/a/b')).toEqual({ bucket: 'old-bucket', prefix: 'a/b/' });
    expect(parseSourceUri('s3://old-bucket/a/b/')).toEqual({ bucket: 'old-bucket', prefix: 'a/b/' });
  });
  it('refuses other schemes and dot segments (usage: exit 2)', () => {
    for (const bad of ['http://x/y', 's3://', 's3://b/../c', '/tmp/x'])
      expect(() => parseSourceUri(bad)).toThrow(UsageError);
  });
});
