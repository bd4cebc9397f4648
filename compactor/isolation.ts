import type { Deaths } from './crash-record.js';

/**
 * How a received batch is processed given its messages' deaths (pure): messages that died alone `crashLimit` times
 * go to the DLQ; never-suspected ones form one batch; suspects of one death go in groups of √batchSize, of more
 * deaths one at a time and `exclusive` (run with the other lane idle, so a death then is theirs alone). A culprit
 * among 1,000 is dead-lettered after 2 + `crashLimit` deaths (the full batch, its group of 32, then alone), and an
 * innocent message is never dead-lettered for it (it never dies alone).
 */
export function isolate<M extends { id: string }>(
  msgs: M[],
  deathsOf: (id: string) => Deaths | undefined,
  opts: { batchSize: number; crashLimit: number },
): { crashLooping: { m: M; deaths: Deaths }[]; groups: { msgs: M[]; exclusive: boolean }[] } {
  const crashLooping: { m: M; deaths: Deaths }[] = [];
  const clean: M[] = [];
  const once: M[] = [];
  const alone: M[][] = [];
  for (const m of msgs) {
    const d = deathsOf(m.id);
    if (!d || d.deaths === 0) clean.push(m);
    else if (d.alone >= opts.crashLimit) crashLooping.push({ m, deaths: d });
    else if (d.deaths === 1) once.push(m);
    else alone.push([m]);
  }
  const size = Math.max(1, Math.ceil(Math.sqrt(opts.batchSize)));
  const groups = clean.length ? [{ msgs: clean, exclusive: false }] : [];
  for (let i = 0; i < once.length; i += size)
    groups.push({ msgs: once.slice(i, i + size), exclusive: false });
  for (const msgs of alone) groups.push({ msgs, exclusive: true });
  return { crashLooping, groups };
}
