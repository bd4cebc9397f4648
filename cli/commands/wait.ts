import type { Command } from 'commander';
import { durationArg, withResourceOptions } from '../options.js';
import { say } from '../print.js';
import { openResources, type ResourceFlags } from '../resources/sources.js';
import { waitConditionArg, waitVerdict, type WaitCondition } from '../resources/wait-for.js';
import { guarded } from '../usage.js';

interface WaitFlags extends ResourceFlags {
  for: WaitCondition;
  timeout: number;
  interval: number;
}

/**
 * `embedctl wait [names...] --for=condition=Compacted --timeout=60s`: the verb for scripts. Exit 0 once every job
 * (named, or all of the home or namespace) meets the condition; 1 as soon as one cannot (it Failed, or its
 * compaction failed), when the timeout passes, or when there is no job to wait for.
 */
export function register(program: Command): void {
  withResourceOptions(
    program
      .command('wait')
      .description('wait until jobs are Succeeded or Compacted; exits 1 when one failed or on timeout')
      .argument('[names...]', 'the jobs to wait for (default: every job)'),
  )
    .requiredOption('--for <condition>', 'condition=Succeeded or condition=Compacted', waitConditionArg)
    .option('--timeout <duration>', 'give up after this long (30s, 5m, 1h)', durationArg, 30_000)
    .option('--interval <duration>', 'how often to look', durationArg, 1000)
    .action((names: string[], f: WaitFlags) => guarded(() => wait(names, f)));
}

async function wait(names: string[], f: WaitFlags): Promise<number> {
  const res = openResources(f);
  const deadline = Date.now() + f.timeout;
  try {
    for (;;) {
      const jobs = (await res.jobs()).filter((j) => names.length === 0 || names.includes(j.metadata.name));
      const missing = names.filter((n) => !jobs.some((j) => j.metadata.name === n));
      const verdicts = jobs.map((j) => ({ name: j.metadata.name, verdict: waitVerdict(j, f.for) }));
      if (jobs.length === 0 && names.length === 0) {
        say('no jobs to wait for\n');
        return 1;
      }
      const failed = verdicts.filter((v) => v.verdict === 'failed');
      if (failed.length > 0) {
        for (const v of failed) say(`embeddingjob/${v.name} failed: condition ${f.for} cannot be met\n`);
        return 1;
      }
      if (missing.length === 0 && verdicts.every((v) => v.verdict === 'met')) {
        for (const v of verdicts) say(`embeddingjob/${v.name} condition met\n`);
        return 0;
      }
      if (Date.now() >= deadline) {
        const left = [...missing, ...verdicts.filter((v) => v.verdict === 'waiting').map((v) => v.name)];
        say(
          `timed out waiting for condition ${f.for} on ${left.map((n) => `embeddingjob/${n}`).join(', ')}\n`,
        );
        return 1;
      }
      await new Promise((r) => setTimeout(r, f.interval));
    }
  } finally {
    res.close();
  }
}
