import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { APP_NAME, LABEL, WORKER_LABELS } from '../../core/contracts/labels.js';
import { labels } from '../common.js';
import type { EgressTarget, EnvironmentConfig } from '../config.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

const { IntOrString } = kplus.k8s;
type EgressRule = kplus.k8s.NetworkPolicyEgressRule;
type Component = 'controller' | 'compactor' | 'worker';

const tcp = (port: number) => ({ protocol: 'TCP', port: IntOrString.fromNumber(port) });
const toTarget = (t: EgressTarget): EgressRule => ({
  to: t.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
  ports: t.ports.map(tcp),
});

/** Pods of each component: the Deployments' labels, and the labels the controller puts on worker pods. */
const SELECTORS: Record<Component, Record<string, string>> = {
  controller: { [LABEL.name]: APP_NAME, [LABEL.component]: 'controller' },
  compactor: { [LABEL.name]: APP_NAME, [LABEL.component]: 'compactor' },
  worker: { ...WORKER_LABELS },
};

/**
 * Egress of one component, pure: DNS to kube-dns only, the apiserver, the AWS endpoints, the EKS Pod Identity agent
 * when that identity mode is used, the embeddings API for workers only (controller and compactor never call it), and
 * in remote storage mode the Chroma server for the compactor and workers.
 */
export function egressRules(cfg: EnvironmentConfig, component: Component): EgressRule[] {
  const n = cfg.network;
  const rules: EgressRule[] = [
    {
      to: [
        {
          namespaceSelector: { matchLabels: n.dns.namespaceSelector },
          podSelector: { matchLabels: n.dns.podSelector },
        },
      ],
      ports: [
        { protocol: 'UDP', port: IntOrString.fromNumber(53) },
        { protocol: 'TCP', port: IntOrString.fromNumber(53) },
      ],
    },
    toTarget(n.apiServer),
    toTarget(n.aws),
  ];
  if (cfg.identity === 'pod-identity')
    rules.push({ to: [{ ipBlock: { cidr: '169.254.170.23/32' } }], ports: [tcp(80)] });
  if (component === 'worker') rules.push(toTarget(n.embeddingApi));
  if (cfg.storage.mode === 'remote' && component !== 'controller') rules.push(toTarget(cfg.storage.egress));
  return rules;
}

/**
 * NetworkPolicies (enforced only when the CNI implements them, e.g. the VPC CNI with network policy enabled):
 * - default deny of all ingress and all egress in the namespace;
 * - ingress to the metrics port of controller and compactor from the monitoring namespace only;
 * - one egress policy per component (`egressRules`).
 */
export class NetworkChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;

    new kplus.k8s.KubeNetworkPolicy(this, 'default-deny-ingress', {
      metadata: { name: 'default-deny-ingress', labels: labels(cfg) },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    // Any pod no component policy selects (a debugging pod, a stray Job) gets no egress at all.
    new kplus.k8s.KubeNetworkPolicy(this, 'default-deny-egress', {
      metadata: { name: 'default-deny-egress', labels: labels(cfg) },
      spec: { podSelector: {}, policyTypes: ['Egress'] },
    });

    new kplus.k8s.KubeNetworkPolicy(this, 'allow-metrics', {
      metadata: { name: 'allow-metrics-scrape', labels: labels(cfg) },
      spec: {
        podSelector: {
          matchLabels: { [LABEL.name]: APP_NAME },
          matchExpressions: [
            { key: LABEL.component, operator: 'In', values: ['controller', 'compactor'] },
          ],
        },
        policyTypes: ['Ingress'],
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: cfg.network.metricsNamespaceSelector } }],
            ports: [tcp(cfg.metricsPort)],
          },
        ],
      },
    });

    for (const component of ['controller', 'compactor', 'worker'] as const) {
      new kplus.k8s.KubeNetworkPolicy(this, `egress-${component}`, {
        metadata: { name: `egress-${component}`, labels: labels(cfg, component) },
        spec: {
          podSelector: { matchLabels: SELECTORS[component] },
          policyTypes: ['Egress'],
          egress: egressRules(cfg, component),
        },
      });
    }
  }
}
