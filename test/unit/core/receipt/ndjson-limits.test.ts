import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../../../core/errors.js';
import { MAX_ROW_BYTES, readNdjson } from '../../../../core/receipt/ndjson-reader.js';

async function drain(it: AsyncGenerator<unknown>): Promise<unknown> {
  try {
    for await (const _ of it);
  } catch (err) {
    return err;
  }
  return undefined;
}

/** A stream of `total` bytes of 'x' with no newline, produced on demand; counts what the reader pulled. */
function endlessLine(total: number) {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  let produced = 0;
  const stream = new Readable({
    highWaterMark: chunk.length,
    read() {
      if (produced >= total) return this.push(null);
      produced += chunk.length;
      this.push(chunk);
    },
  });
  return { stream, produced: () => produced };
}

describe('NDJSON limits (issue 18 item 10)', () => {
  it('a 100 MB line is refused once it passes the row limit, without reading the rest', async () => {
    const { stream, produced } = endlessLine(100 * 1024 * 1024);
    const err = await drain(readNdjson(stream, 'lines.ndjson'));
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).where).toEqual({ file: 'lines.ndjson', row: 1 });
    expect((err as Error).message).toMatch(/^lines\.ndjson, row 1: row is longer than the limit/);
    expect(produced()).toBeLessThan(MAX_ROW_BYTES + 4 * 64 * 1024);
  });

  it('caps the rows of a file, naming the file and the first row over', async () => {
    const body = Array.from({ length: 6 }, (_, i) => JSON.stringify({ i })).join('\n');
    const err = await drain(
      readNdjson(Readable.from([Buffer.from(body)]), 'words.ndjson', { maxBytes: 1e6, maxRows: 4 }),
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).where).toEqual({ file: 'words.ndjson', row: 5 });
    expect((err as Error).message).toMatch(/more than 4 rows/);
    // The last row without a trailing newline counts too.
    const five = Array.from({ length: 5 }, (_, i) => JSON.stringify({ i })).join('\n');
    expect(
      await drain(readNdjson(Readable.from([Buffer.from(five)]), 'w', { maxBytes: 1e6, maxRows: 4 })),
    ).toMatchObject({ where: { file: 'w', row: 5 } });
  });

  it('caps the bytes of a file whatever its rows, naming the file', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => JSON.stringify({ i, pad: 'p'.repeat(40) }) + '\n');
    const err = await drain(
      readNdjson(Readable.from(rows.map((r) => Buffer.from(r))), 'lines.ndjson', {
        maxBytes: 4096,
        maxRows: 1e6,
      }),
    );
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toMatch(
      /^lines\.ndjson, row \d+: file is larger than the limit of 4,096 bytes/,
    );
  });
});
