import * as kplus from 'cdk8s-plus-27';
import type { Construct } from 'constructs';

import { APP_NAME, labels } from '../common.js';
import type { ChartProps } from './base.js';
import { NamespacedChart } from './base.js';

const { IntOrString } = kplus.k8s;

/**
 * NetworkPolicies (enforced only when the CNI implements them, e.g. the VPC CNI with network policy enabled):
 * - default deny of all ingress to the namespace;
 * - ingress to the metrics port of controller and compactor from the monitoring namespace only;
 * - egress: DNS, HTTPS anywhere (AWS endpoints and the embedding API have no fixed addresses), the API server
 *   (443/6443), the EKS Pod Identity agent when that identity mode is used, and any extra configured ports.
 */
export class NetworkChart extends NamespacedChart {
  constructor(scope: Construct, id: string, props: ChartProps) {
    super(scope, id, props);
    const { cfg } = props;
    const tcp = (port: number) => ({ protocol: 'TCP', port: IntOrString.fromNumber(port) });

    new kplus.k8s.KubeNetworkPolicy(this, 'default-deny-ingress', {
      metadata: { name: 'default-deny-ingress', labels: labels(cfg) },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });

    new kplus.k8s.KubeNetworkPolicy(this, 'allow-metrics', {
      metadata: { name: 'allow-metrics-scrape', labels: labels(cfg) },
      spec: {
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': APP_NAME },
          matchExpressions: [
            { key: 'app.kubernetes.io/component', operator: 'In', values: ['controller', 'compactor'] },
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

    const egressPorts = [443, 6443, ...cfg.network.extraEgressPorts].map(tcp);
    new kplus.k8s.KubeNetworkPolicy(this, 'egress', {
      metadata: { name: 'allow-egress', labels: labels(cfg) },
      spec: {
        podSelector: {},
        policyTypes: ['Egress'],
        egress: [
          {
            ports: [
              { protocol: 'UDP', port: IntOrString.fromNumber(53) },
              { protocol: 'TCP', port: IntOrString.fromNumber(53) },
            ],
          },
          { ports: egressPorts },
          ...(cfg.identity === 'pod-identity'
            ? [{ to: [{ ipBlock: { cidr: '169.254.170.23/32' } }], ports: [tcp(80)] }]
            : []),
        ],
      },
    });
  }
}
