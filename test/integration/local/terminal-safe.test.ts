// Hostile text reaches the terminal escaped (issue 18, item 12; audit 5.8): an --input file with terminal escape
// sequences in its name and its bytes, a job whose failure message holds them, and a --home path with one. Real
// `embedctl` processes; stdout and stderr must hold no control character but the line breaks.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddingJobName } from '../../../core/contracts/embedding-job.js';
import { embedMessageFor, generateReceipts } from '../../../core/sample/index.js';
import { ARTIFACTS_BUCKET, openLocal } from '../../../local/home.js';
import { cli, homeFactory } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-terminal-safe-');
afterAll(removeHomes);

const ESC = '\u001b';
const HOSTILE = `${ESC}[2J${ESC}]0;owned\u0007${ESC}[31mRED\u202e`;
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('text from the input is shown, never obeyed', () => {
  it('submit: a receipt folder and a row with escape sequences are named with them escaped', async () => {
    const input = join(tempHome(), 'input');
    const [r] = generateReceipts(1, 3);
    const dir = join(input, `evil${ESC}[2J`);
    mkdirSync(dir, { recursive: true });
    // Not JSON: Node's parse error quotes the raw bytes of the row.
    writeFileSync(join(dir, 'lines.ndjson'), `${HOSTILE}\n`);
    writeFileSync(join(dir, 'words.ndjson'), r!.wordsNdjson);
    const res = await cli(['submit', input, '--home', tempHome()]).done;
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toMatch(/✗ .*evil\\u001b\[2J/);
    expect(res.stdout).not.toMatch(CONTROL);
    expect(res.stderr).not.toMatch(CONTROL);
  });

  it('status: a failure message with escape sequences is escaped in the table', async () => {
    const home = tempHome();
    const [r] = generateReceipts(1, 4);
    const ports = openLocal(home);
    try {
      const m = embedMessageFor(r!, ARTIFACTS_BUCKET);
      ports.jobs.createFromMessage(m);
      ports.jobs.fail(embeddingJobName(m), 'BadInput', `row 1: ${HOSTILE}`);
    } finally {
      ports.close();
    }
    const res = await cli(['status', '--home', home]).done;
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain('\\u001b[31mRED\\u202e');
    expect(res.stdout).not.toMatch(CONTROL);
  });

  it('an error line naming a --home with an escape sequence is escaped', async () => {
    const res = await cli(['status', '--home', join(tempHome(), `x${ESC}[2J`)]).done;
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('x\\u001b[2J');
    expect(res.stderr).not.toMatch(CONTROL);
  });
});
