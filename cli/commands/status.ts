import type { Command } from 'commander';
import type { EmbeddingJob } from '../../core/contracts/embedding-job.js';
import { isCompacted, type LocalJob } from '../../core/local/job-table.js';
import { openLocal, runnerState, type RunnerState } from '../../local/home.js';
import { cloudJobClient, cloudNamespace } from '../cloud.js';
import { homeOption, jsonOption, kubeconfigOption } from '../options.js';
import { printJson, printTable, say } from '../print.js';
import { jobRow, localJobAsEmbeddingJob } from '../resources/views.js';
import { existingHome, guarded } from '../usage.js';

interface StatusFlags {
  home: string;
  cloud?: boolean;
  namespace?: string;
  kubeconfig?: string;
  all?: boolean;
  json?: boolean;
}

/** `embedctl status`: the jobs of the home, or (--cloud) the EmbeddingJobs of a namespace; exits 1 when any failed. */
export function register(program: Command): void {
  program
    .command('status')
    .description(
      'jobs and their runs: the local job table, or EmbeddingJobs in a namespace (like kubectl get ej)',
    )
    .addOption(homeOption())
    .option('--cloud', 'list EmbeddingJobs through the Kubernetes API')
    .option('--namespace <ns>', 'namespace of the EmbeddingJobs (cloud; default $NAMESPACE or "default")')
    .addOption(kubeconfigOption())
    .option('--all', 'list every job, not only unfinished and failed ones')
    .addOption(jsonOption())
    .action((f: StatusFlags) => guarded(() => (f.cloud ? cloudStatus(f) : localStatus(f))));
}

async function cloudStatus(f: StatusFlags): Promise<number> {
  const items = await (await cloudJobClient(f.kubeconfig)).list(cloudNamespace(f.namespace));
  if (f.json) printJson(items);
  else printTable(items.map(cloudRow), 'No jobs to show.');
  return items.some((j) => j.status?.phase === 'Failed') ? 1 : 0;
}

async function localStatus(f: StatusFlags): Promise<number> {
  const ports = openLocal(existingHome(f.home));
  try {
    const jobs = ports.jobs.list();
    const counts = ports.jobs.counts();
    const runner = runnerState(ports.paths);
    const depth = Object.fromEntries(
      await Promise.all(Object.values(ports.queues).map(async (q) => [q.name, await q.depth()] as const)),
    );
    const deadLetters = Object.values(ports.queues).flatMap((q) => q.deadLetters());
    if (f.json) {
      printJson({ counts, queues: depth, runner, jobs, deadLetters });
    } else {
      const shown = f.all ? jobs : jobs.filter((j) => j.phase !== 'Succeeded' || !isCompacted(j));
      printTable(
        shown.map((j) => localRow(j, runner)),
        'No jobs to show.',
      );
      say(
        `\n${jobs.length} job(s): ${Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}${f.all ? '' : ' (finished and compacted ones hidden; --all shows them)'}\n`,
      );
      say(
        `queues: ${Object.entries(depth)
          .map(([k, v]) => `${k} ${v.visible} visible/${v.inFlight} in flight`)
          .join(', ')}\n`,
      );
      for (const d of deadLetters) say(`dead letter on ${d.queue}: ${d.reason}\n`);
      say(`${runnerText(runner, counts.Scheduled + counts.Running)}\n`);
    }
    return counts.Failed > 0 || deadLetters.length > 0 ? 1 : 0;
  } finally {
    ports.close();
  }
}

/** The runner of the home: whether the jobs shown Scheduled or Running are really being worked on. */
function runnerText(r: RunnerState, claimed: number): string {
  if (r.alive) return `runner: pid ${r.pid} is running`;
  const jobs = claimed
    ? `; its ${claimed} Scheduled/Running job(s) are not being worked on and resume on the next embedctl local run`
    : '';
  return r.pid === undefined
    ? `runner: none is running${jobs}`
    : `runner (pid ${r.pid}) is not alive: it was stopped or killed${jobs}`;
}

/** The columns of `get jobs` (cli/resources/views.ts), and a MESSAGE that says why a job is not moving. */
function localRow(j: LocalJob, runner: RunnerState): Record<string, string> {
  return {
    ...jobRow(localJobAsEmbeddingJob(j), Date.now()).cells,
    MESSAGE:
      j.phase === 'Failed' || j.phase === 'Pending'
        ? `${j.reason ?? ''}${j.message ? `: ${j.message}` : ''}`.slice(0, 160)
        : (j.phase === 'Scheduled' || j.phase === 'Running') && !runner.alive
          ? 'runner not alive: resumes on the next local run'
          : '',
  };
}

function cloudRow(j: EmbeddingJob): Record<string, string> {
  const s = j.status ?? {};
  return {
    ...jobRow(j, Date.now()).cells,
    MESSAGE: s.phase === 'Failed' ? (s.message ?? '').slice(0, 160) : '',
  };
}
