/**
 * The shipped alerts, run through Prometheus's own rule tester: `spec.groups` of the PrometheusRule synthesized for
 * `prod` (the environment with alerts on) becomes a rule file, checked by `promtool check rules` and exercised by
 * `promtool test rules` with series that make each alert fire and series that must keep it silent.
 * promtool comes from Debian's `prometheus` package; without it this test fails rather than skips.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

import { ALERT_GROUP } from '../../../cdk8s/alerts.js';
import { loadEnvironment } from '../../../cdk8s/config.js';
import type { PrometheusRuleSpec } from '../../../cdk8s/crd-types.js';
import { monitoringObjects, writeRuleFile } from '../../support/prometheus-operator.js';

const ENV_NAME = 'prod';
const cfg = loadEnvironment(ENV_NAME);
const NS = cfg.namespace;
const T = cfg.monitoring.alerts;

const workDir = mkdtempSync(join(tmpdir(), 'alerts-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** The rule file, taken from the synthesized YAML (what `kubectl apply` would ship), not from the builder. */
function extractRuleFile(): string {
  const { prometheusRules } = monitoringObjects(cfg, join(workDir, 'charts'));
  expect(prometheusRules, `one PrometheusRule in the ${ENV_NAME} charts`).toHaveLength(1);
  return writeRuleFile(prometheusRules, join(workDir, 'rules.yaml'));
}

function promtool(args: string[]): { status: number | null; output: string } {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (found.error) {
    throw new Error(
      'promtool not found on PATH: install Debian\'s "prometheus" package ' +
        '(apt-get install -y --no-install-recommends prometheus), which provides /usr/bin/promtool',
    );
  }
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: workDir });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

// ------------------------------------------------------------------------------------------------ the test cases

type Series = { series: string; values: string };
type AlertCheck = {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[];
};
type TestGroup = { name: string; interval: string; input_series: Series[]; alert_rule_test: AlertCheck[] };

const s = (metric: string, labels: Record<string, string>, values: string): Series => ({
  series: `${metric}{${Object.entries({ namespace: NS, ...labels })
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ')}}`,
  values,
});
const silent = (alertname: string, eval_time: string): AlertCheck => ({
  alertname,
  eval_time,
  exp_alerts: [],
});

const LEADER = 'embedctl-controller';
const COMPACTOR_POD = 'embedctl-compactor-7d9f-abcde';

const groups: TestGroup[] = [
  {
    name: 'dead-lettered: a fresh compactor pod counter (born at 1) and the controller ingest counter',
    interval: '1m',
    input_series: [
      // The compactor pod starts at 5m and dead-letters its first message: the series appears with value 1.
      s('embedctl_dlq_messages_total', { pod: COMPACTOR_POD, queue: 'lines', reason: 'poison' }, '_x5 1x40'),
      // The controller's counter exists at 0 and steps to 1 at 11m.
      s(
        'embedctl_ingest_messages_total',
        { pod: 'embedctl-controller-a', result: 'dead_lettered' },
        '0x10 1x40',
      ),
      s('embedctl_ingest_messages_total', { pod: 'embedctl-controller-a', result: 'created' }, '0+5x50'),
      // Another install's DLQ is not ours.
      s('embedctl_dlq_messages_total', { namespace: 'other', queue: 'words', reason: 'poison' }, '0+1x50'),
    ],
    alert_rule_test: [
      silent('EmbedctlMessagesDeadLettered', '4m'),
      {
        eval_time: '7m',
        alertname: 'EmbedctlMessagesDeadLettered',
        exp_alerts: [dlqAlert('lines', 1)],
      },
      {
        eval_time: '16m',
        alertname: 'EmbedctlMessagesDeadLettered',
        exp_alerts: [dlqAlert('lines', 1), dlqAlert('embed', 1)],
      },
      // A window after the last message, nothing more arrived.
      silent('EmbedctlMessagesDeadLettered', `${11 + T.deadLetterWindowMinutes + 2}m`),
    ],
  },
  {
    name: 'compaction lag: words slow (all runs 300-900 s), lines fast',
    interval: '1m',
    input_series: [
      ...bucketSeries('words', { '60': '0x40', '300': '0x40', '900': '0+1x40', '+Inf': '0+1x40' }),
      ...bucketSeries('lines', { '60': '0+2x40', '300': '0+2x40', '900': '0+2x40', '+Inf': '0+2x40' }),
    ],
    alert_rule_test: [
      silent('EmbedctlCompactionLagHigh', '4m'), // above the threshold, but not yet for 5m
      {
        eval_time: '20m',
        alertname: 'EmbedctlCompactionLagHigh',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', collection: 'words' },
            exp_annotations: {
              summary: 'Compaction lags behind',
              // p90 within the (300, 900] bucket: 300 + 0.9 × 600 = 840 s.
              description: `p90 CompactionRun lag of words is 14m 0s (threshold ${T.compactionLagMinutes}m).`,
            },
          },
        ],
      },
    ],
  },
  {
    name: 'leader: one replica leads',
    interval: '1m',
    input_series: [
      s('leader_election_master_status', { pod: 'embedctl-controller-a', name: LEADER }, '1x30'),
      s('leader_election_master_status', { pod: 'embedctl-controller-b', name: LEADER }, '0x30'),
      // The compactor's Lease is not the controller's.
      s('leader_election_master_status', { pod: COMPACTOR_POD, name: 'embedctl-compactor' }, '0x30'),
    ],
    alert_rule_test: [silent('EmbedctlNoControllerLeader', '20m')],
  },
  {
    name: 'leader: both replicas follow',
    interval: '1m',
    input_series: [
      s('leader_election_master_status', { pod: 'embedctl-controller-a', name: LEADER }, '0x30'),
      s('leader_election_master_status', { pod: 'embedctl-controller-b', name: LEADER }, '0x30'),
    ],
    alert_rule_test: [
      silent('EmbedctlNoControllerLeader', `${T.noLeaderMinutes - 1}m`),
      {
        eval_time: `${T.noLeaderMinutes + 2}m`,
        alertname: 'EmbedctlNoControllerLeader',
        exp_alerts: [noLeader({})],
      },
    ],
  },
  {
    name: 'leader: no controller scraped at all',
    interval: '1m',
    input_series: [s('embedctl_ingest_paused', { pod: 'unrelated' }, '0x30')],
    alert_rule_test: [
      {
        eval_time: `${T.noLeaderMinutes + 2}m`,
        alertname: 'EmbedctlNoControllerLeader',
        exp_alerts: [noLeader({ namespace: NS, name: LEADER })],
      },
    ],
  },
  {
    name: 'worker failure rate: 1 in 20 jobs fails',
    interval: '1m',
    input_series: [
      s('embedctl_embeddingjob_transitions_total', { phase: 'Succeeded', reason: 'Completed' }, '0+19x60'),
      s(
        'embedctl_embeddingjob_transitions_total',
        { phase: 'Failed', reason: 'BackoffLimitExceeded' },
        '0+1x60',
      ),
      s('embedctl_embeddingjob_transitions_total', { phase: 'Running', reason: 'PodRunning' }, '0+100x60'),
    ],
    alert_rule_test: [silent('EmbedctlWorkerFailureRate', '40m')],
  },
  {
    name: 'worker failure rate: 1 in 5 jobs fails',
    interval: '1m',
    input_series: [
      s('embedctl_embeddingjob_transitions_total', { phase: 'Succeeded', reason: 'Completed' }, '0+4x60'),
      s(
        'embedctl_embeddingjob_transitions_total',
        { phase: 'Failed', reason: 'BackoffLimitExceeded' },
        '0+1x60',
      ),
      s('embedctl_embeddingjob_transitions_total', { phase: 'Running', reason: 'PodRunning' }, '0+100x60'),
    ],
    alert_rule_test: [
      silent('EmbedctlWorkerFailureRate', '3m'), // above the threshold, but not yet for 5m
      {
        eval_time: '40m',
        alertname: 'EmbedctlWorkerFailureRate',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning' },
            exp_annotations: {
              summary: 'Many EmbeddingJobs fail',
              description: `20% of the EmbeddingJobs finished in the last 30m Failed (threshold ${T.workerFailureRatio}).`,
            },
          },
        ],
      },
    ],
  },
  {
    name: 'compactor: restarts every few minutes (lease lost), or CrashLoopBackOff; a controller restart is not it',
    interval: '1m',
    input_series: [
      s(
        'kube_pod_container_status_restarts_total',
        { pod: COMPACTOR_POD, container: 'compactor' },
        '0x10 1x5 2x5 3x5 4x30',
      ),
      s(
        'kube_pod_container_status_waiting_reason',
        { pod: `${COMPACTOR_POD}2`, container: 'compactor', reason: 'CrashLoopBackOff' },
        '_x30 1x10',
      ),
      s(
        'kube_pod_container_status_restarts_total',
        { pod: 'embedctl-controller-a', container: 'controller' },
        '0+1x60',
      ),
    ],
    alert_rule_test: [
      silent('EmbedctlCompactorCrashLooping', '15m'), // one restart so far
      {
        eval_time: '28m',
        alertname: 'EmbedctlCompactorCrashLooping',
        exp_alerts: [crashLooping({ pod: COMPACTOR_POD, container: 'compactor' })],
      },
      {
        eval_time: '33m',
        alertname: 'EmbedctlCompactorCrashLooping',
        exp_alerts: [
          crashLooping({ pod: COMPACTOR_POD, container: 'compactor' }),
          crashLooping({ pod: `${COMPACTOR_POD}2`, container: 'compactor', reason: 'CrashLoopBackOff' }),
        ],
      },
      silent('EmbedctlCompactorCrashLooping', '70m'), // no restart for 30m and more
    ],
  },
  {
    name: 'S3 mirror: lines unmirrored since 60 s, words current (0)',
    interval: '1m',
    input_series: [
      s(
        'embedctl_compactor_s3_unmirrored_since_timestamp_seconds',
        { pod: COMPACTOR_POD, collection: 'lines' },
        '60x60',
      ),
      s(
        'embedctl_compactor_s3_unmirrored_since_timestamp_seconds',
        { pod: COMPACTOR_POD, collection: 'words' },
        '0x60',
      ),
    ],
    alert_rule_test: [
      silent('EmbedctlS3MirrorStale', `${T.s3MirrorStaleMinutes}m`), // 60 s short of the threshold
      {
        eval_time: `${T.s3MirrorStaleMinutes + 5}m`,
        alertname: 'EmbedctlS3MirrorStale',
        exp_alerts: [
          {
            exp_labels: { severity: 'warning', collection: 'lines' },
            exp_annotations: {
              summary: 'The S3 snapshot mirror is stale',
              description: `A version of lines published ${T.s3MirrorStaleMinutes + 4}m 0s ago is not in S3 yet (threshold ${T.s3MirrorStaleMinutes}m).`,
            },
          },
        ],
      },
    ],
  },
];

function dlqAlert(queue: string, about: number): AlertCheck['exp_alerts'][number] {
  return {
    exp_labels: { severity: 'warning', queue },
    exp_annotations: {
      summary: 'Messages were moved to a dead-letter queue',
      description: `About ${about} message(s) of queue ${queue} dead-lettered in the last ${T.deadLetterWindowMinutes}m.`,
    },
  };
}

function bucketSeries(collection: string, byLe: Record<string, string>): Series[] {
  return Object.entries(byLe).map(([le, values]) =>
    s('embedctl_compaction_lag_seconds_bucket', { pod: COMPACTOR_POD, collection, le }, values),
  );
}

function noLeader(labels: Record<string, string>): AlertCheck['exp_alerts'][number] {
  return {
    exp_labels: { severity: 'critical', ...labels },
    exp_annotations: {
      summary: 'No controller replica holds the leader Lease',
      description: `No replica has led Lease ${LEADER} for ${T.noLeaderMinutes}m: no EmbeddingJob is dispatched.`,
    },
  };
}

function crashLooping(labels: Record<string, string>): AlertCheck['exp_alerts'][number] {
  return {
    exp_labels: { severity: 'critical', namespace: NS, ...labels },
    exp_annotations: {
      summary: 'The compactor restarts repeatedly',
      description: `Compactor pod ${labels.pod} is restarting (lease lost, i.e. fenced by another holder, or crashing); check its logs for "lease lost".`,
    },
  };
}

// ------------------------------------------------------------------------------------------------------ the tests

describe(`alerts of the ${ENV_NAME} PrometheusRule`, () => {
  const ruleFile = extractRuleFile();
  const shipped = (parse(readFileSync(ruleFile, 'utf8')) as PrometheusRuleSpec).groups;

  it('pass promtool check rules', () => {
    const r = promtool(['check', 'rules', ruleFile]);
    expect(r.status, r.output).toBe(0);
  });

  it('are each tested firing and silent', () => {
    const checks = groups.flatMap((g) => g.alert_rule_test);
    const names = shipped.flatMap((g) => g.rules.map((r) => r.alert));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) {
      const mine = checks.filter((c) => c.alertname === name);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${name} fires somewhere`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${name} stays silent somewhere`,
      ).toBe(true);
    }
    expect(shipped.map((g) => g.name)).toEqual([ALERT_GROUP]);
  });

  it('pass promtool test rules', () => {
    const testFile = join(workDir, 'alerts.test.yaml');
    writeFileSync(
      testFile,
      stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', tests: groups }, { lineWidth: 0 }),
    );
    const r = promtool(['test', 'rules', testFile]);
    expect(r.status, r.output).toBe(0);
  });
});
