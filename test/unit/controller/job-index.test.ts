// The dispatcher's capacity count: a worker Job holds a slot until it finishes, or until every one of its
// EmbeddingJobs has been reported by it (its pod only has to exit then).
import { describe, expect, it } from 'vitest';
import { JobIndex } from '../../../controller/job-index.js';
import { formatMembers, MEMBERS_ANNOTATION } from '../../../controller/worker-job.js';
import type { Informer } from '../../../core/kube/informer.js';
import type { Job } from '../../../core/kube/types.js';

function job(name: string, members: string[], complete = false): Job {
  return {
    metadata: {
      name,
      annotations: { [MEMBERS_ANNOTATION]: formatMembers(members.map((m) => ({ name: m, attempt: 1 }))) },
    },
    ...(complete ? { status: { conditions: [{ type: 'Complete', status: 'True' }] } } : {}),
  } as Job;
}

function indexOf(jobs: Job[]): JobIndex {
  const informer = { on: () => informer, list: () => jobs, get: () => undefined };
  return new JobIndex(informer as unknown as Informer<Job>);
}

describe('JobIndex.activeJobs', () => {
  const jobs = [job('a', ['ej-1', 'ej-2']), job('b', ['ej-3']), job('c', ['ej-4'], true)];

  it('counts every unfinished Job when nothing has been reported', () => {
    expect(indexOf(jobs).activeJobs()).toBe(2);
  });

  it('frees the slot of a Job whose every member it reported, not of one with a member left', () => {
    const byJob = new Map([
      ['ej-1', 'a'],
      ['ej-2', 'a'],
      ['ej-3', 'an-earlier-job'], // reported, but by another attempt's Job
    ]);
    expect(indexOf(jobs).activeJobs(Date.now(), (ej, j) => byJob.get(ej) === j)).toBe(1);
    byJob.delete('ej-2');
    expect(indexOf(jobs).activeJobs(Date.now(), (ej, j) => byJob.get(ej) === j)).toBe(2);
  });

  it('keeps counting a Job without a members annotation', () => {
    const bare = { metadata: { name: 'x' } } as Job;
    expect(indexOf([bare]).activeJobs(Date.now(), () => true)).toBe(1);
  });
});
