// What `local run` reports (issue 12, items 7, 10 and 11): a key that escapes its bucket fails once as BadInput,
// receipts rejected while the folder is read count in the Receipts line, every stage time is a real duration, a rerun
// that adds nothing re-uploads and re-queues nothing, and the human summary names stages as a user thinks of them.
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { artifactKeys, generateReceipts } from '../../../core/sample/index.js';
import { openLocal } from '../../../local/home.js';
import type { RunSummary } from '../../../local/run.js';
import { expectedIds, liveIds } from '../../support/snapshot.js';
import { cli, homeFactory } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-summary-');
afterAll(removeHomes);

const TIMEOUT = 600_000;
const BAD_IMAGE = '6f1c2a4e-0b7d-4c1e-9a53-2d8e7f0c1b99';

describe('local run: the summary tells the truth', () => {
  it(
    'bad key → dead-lettered at ingest, counted once; rejected receipts counted; no negative stage; a rerun uploads and queues nothing',
    async () => {
      const home = tempHome();
      const input = join(home, 'input');
      const good = generateReceipts(3, 9);
      good.forEach((r, i) => {
        mkdirSync(join(input, `r${i}`), { recursive: true });
        writeFileSync(join(input, `r${i}`, 'lines.ndjson'), r.linesNdjson);
        writeFileSync(join(input, `r${i}`, 'words.ndjson'), r.wordsNdjson);
      });
      writeFileSync(join(input, 'orphan.lines.ndjson'), good[0]!.linesNdjson); // no words: rejected on read
      // An EMBED message whose key escapes its bucket, as another producer might send it.
      const ports = openLocal(home);
      await ports.queues.embed.send([
        {
          body: JSON.stringify({
            image_id: BAD_IMAGE,
            receipt_id: 1,
            artifacts_bucket: 'receipts',
            lines_key: '../../etc/passwd',
            words_key: 'receipts/x/words.ndjson',
          }),
        },
      ]);
      ports.close();

      const args = ['local', 'run', '--home', home, '--input', input, '--no-queries', '--timeout', '240'];
      const first = await cli([...args, '--json'], { timeoutMs: 300_000 }).done;
      expect(first.code, first.stderr.slice(-3000)).toBe(0);
      const summary = JSON.parse(first.stdout) as RunSummary;
      expect(summary.complete).toBe(true);
      // 3 embedded + 1 message refused at ingest + 1 rejected while reading the folder.
      expect(summary.receipts).toEqual({ total: 5, succeeded: 3, failed: 2 });
      expect(summary.submitted).toBe(3);
      const byReason = summary.failures.map((f) => `${f.source}: ${f.reason}: ${f.message}`);
      expect(byReason).toContainEqual(expect.stringMatching(/^orphan: BadInput: words\.ndjson is missing$/));
      // The escaping key never becomes a job: the message is dead-lettered at ingest, the reason naming the field.
      const badKey = summary.deadLetters.find((d) => d.body.includes(BAD_IMAGE));
      expect(badKey, JSON.stringify(summary.deadLetters)).toMatchObject({
        reason: expect.stringContaining('lines_key'),
      });
      for (const [name, t] of Object.entries(summary.stages))
        expect(t.wallMs, name).toBeGreaterThanOrEqual(0);
      const status = JSON.parse((await cli(['status', '--home', home, '--json']).done).stdout) as {
        jobs: { spec: { imageId: string }; attempts: number; reason?: string }[];
      };
      expect(status.jobs.find((j) => j.spec.imageId === BAD_IMAGE)).toBeUndefined();

      // The same command again: nothing new, nothing uploaded or queued again.
      const keys = good.map((r) => artifactKeys(r.imageId, r.receiptId));
      const mtimes = () =>
        keys.flatMap((k) =>
          [k.linesKey, k.wordsKey].map((key) => statSync(join(home, 'objects', 'receipts', key)).mtimeMs),
        );
      const before = mtimes();
      const again = await cli([...args, '--json'], { timeoutMs: 300_000 }).done;
      expect(again.code, again.stderr.slice(-3000)).toBe(0);
      const rerun = JSON.parse(again.stdout) as RunSummary;
      expect(rerun.submitted).toBe(0);
      expect(rerun.skipped).toEqual({ done: 3, queued: 0 });
      expect(rerun.workers.launched).toBe(0);
      expect(mtimes()).toEqual(before);
      const want = expectedIds(good);
      const live = await liveIds(join(home, 'volume'));
      for (const c of COLLECTIONS) expect(live[c].ids).toEqual(want[c]);

      // The human summary: the counts in words, and stage names as a user thinks of the pipeline.
      const human = await cli(args, { timeoutMs: 300_000 }).done;
      expect(human.code, human.stderr.slice(-3000)).toBe(0);
      expect(human.stdout).toContain('Receipts: 5 (3 embedded, 2 failed; 0 new, 3 already done)');
      expect(human.stdout).toMatch(/^ {2}reading and uploading receipts\s/m);
      expect(human.stdout).toMatch(/^ {2}waiting for the index to catch up\s/m);
      for (const internal of ['childBuild', 'compactWait', 'chromaWrites'])
        expect(human.stdout).not.toContain(internal);
    },
    TIMEOUT,
  );
});
