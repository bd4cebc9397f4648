/**
 * The alerting rules of one environment (a pure function of its config): the PrometheusRule in
 * cdk8s/charts/monitoring.ts carries them, and test/unit/cdk8s/alerts.test.ts runs them through `promtool test rules`.
 * Every selector is scoped to the install's namespace, the label Prometheus Operator puts on scraped series.
 */
import type { EnvironmentConfig } from './config.js';
import { NAMES } from './common.js';
import type { AlertingRule, PrometheusRuleSpec } from './crd-types.js';

export const ALERT_GROUP = 'embedctl';

/**
 * How much a counter grew within `window`, including series born inside it: counters here are created on first
 * increment, so a fresh pod's series starts at 1 and `increase()` alone would never see that first message.
 */
function recentIncrease(selector: string, window: string): string {
  return `(${selector} unless ${selector} offset ${window}) or increase(${selector}[${window}])`;
}

const sel = (metric: string, ns: string, extra = ''): string =>
  `${metric}{namespace="${ns}"${extra ? `, ${extra}` : ''}}`;

export function alertingRules(cfg: EnvironmentConfig): PrometheusRuleSpec {
  const ns = cfg.namespace;
  const a = cfg.monitoring.alerts;
  const dlqWindow = `${a.deadLetterWindowMinutes}m`;
  const leader = sel('leader_election_master_status', ns, `name="${NAMES.leases.controller}"`);
  const transitions = (phase: string): string =>
    sel('embedctl_embeddingjob_transitions_total', ns, `phase=~"${phase}"`);
  const compactorPod = `container="compactor", pod=~"${NAMES.compactor}-.*"`;
  const rules: AlertingRule[] = [
    {
      alert: 'EmbedctlMessagesDeadLettered',
      expr: [
        `sum by (queue) (${recentIncrease(sel('embedctl_dlq_messages_total', ns), dlqWindow)}) > 0`,
        `or label_replace(sum(${recentIncrease(sel('embedctl_ingest_messages_total', ns, 'result="dead_lettered"'), dlqWindow)}), "queue", "embed", "", "") > 0`,
      ].join('\n'),
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Messages were moved to a dead-letter queue',
        description: `About {{ printf "%.0f" $value }} message(s) of queue {{ $labels.queue }} dead-lettered in the last ${dlqWindow}.`,
      },
    },
    {
      alert: 'EmbedctlCompactionLagHigh',
      expr: `histogram_quantile(0.9, sum by (collection, le) (rate(${sel('embedctl_compaction_lag_seconds_bucket', ns)}[15m]))) > ${a.compactionLagMinutes * 60}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Compaction lags behind',
        description: `p90 CompactionRun lag of {{ $labels.collection }} is {{ $value | humanizeDuration }} (threshold ${a.compactionLagMinutes}m).`,
      },
    },
    {
      alert: 'EmbedctlNoControllerLeader',
      expr: `max(${leader}) < 1 or absent(${leader})`,
      for: `${a.noLeaderMinutes}m`,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No controller replica holds the leader Lease',
        description: `No replica has led Lease ${NAMES.leases.controller} for ${a.noLeaderMinutes}m: no EmbeddingJob is dispatched.`,
      },
    },
    {
      alert: 'EmbedctlWorkerFailureRate',
      expr: `sum(increase(${transitions('Failed')}[30m])) / sum(increase(${transitions('Succeeded|Failed')}[30m])) > ${a.workerFailureRatio}`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Many EmbeddingJobs fail',
        description: `{{ $value | humanizePercentage }} of the EmbeddingJobs finished in the last 30m Failed (threshold ${a.workerFailureRatio}).`,
      },
    },
    {
      alert: 'EmbedctlCompactorCrashLooping',
      // kube-state-metrics series: a lost Lease (fenced) exits the compactor non-zero, so the kubelet restarts it.
      expr: [
        `increase(${sel('kube_pod_container_status_restarts_total', ns, compactorPod)}[30m]) >= ${a.compactorRestarts}`,
        `or max_over_time(${sel('kube_pod_container_status_waiting_reason', ns, `${compactorPod}, reason="CrashLoopBackOff"`)}[5m]) >= 1`,
      ].join('\n'),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'The compactor restarts repeatedly',
        description:
          'Compactor pod {{ $labels.pod }} is restarting (lease lost, i.e. fenced by another holder, or crashing); check its logs for "lease lost".',
      },
    },
    {
      alert: 'EmbedctlS3MirrorStale',
      expr: `time() - max by (collection) (${sel('embedctl_compactor_s3_unmirrored_since_timestamp_seconds', ns)} > 0) > ${a.s3MirrorStaleMinutes * 60}`,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'The S3 snapshot mirror is stale',
        description: `A version of {{ $labels.collection }} published {{ $value | humanizeDuration }} ago is not in S3 yet (threshold ${a.s3MirrorStaleMinutes}m).`,
      },
    },
  ];
  return { groups: [{ name: ALERT_GROUP, rules }] };
}
