/**
 * The stand-in for `kubernetes_sd_configs` role `endpoints` (Debian's Prometheus has none): from Endpoints, Services
 * and Pods, the targets and meta labels Prometheus's own discovery would give, so the ServiceMonitor's relabelling
 * (test/support/prometheus-operator.ts) sees what it would see in a cluster.
 */
import { describe, expect, it } from 'vitest';

import { endpointTargets, type EndpointsObject, type PodObject } from '../../harness/node/endpoints-sd.js';

const ns = 'receipt-embeddings';
const service = {
  metadata: {
    name: 'embedctl-controller-metrics',
    namespace: ns,
    labels: { 'app.kubernetes.io/name': 'embedctl' },
  },
};
const pod = (name: string, ip: string, phase = 'Running'): PodObject => ({
  metadata: { name, namespace: ns },
  spec: { containers: [{ name: 'controller', ports: [{ name: 'metrics', containerPort: 9090 }] }] },
  status: { phase, podIP: ip },
});
const endpoints: EndpointsObject = {
  metadata: { name: 'embedctl-controller-metrics', namespace: ns },
  subsets: [
    {
      addresses: [{ ip: '10.244.77.5', targetRef: { kind: 'Pod', name: 'c-a' } }],
      notReadyAddresses: [{ ip: '10.244.77.6', targetRef: { kind: 'Pod', name: 'c-b' } }],
      ports: [{ name: 'metrics', port: 9090, protocol: 'TCP' }],
    },
  ],
};

describe('endpointTargets (kubernetes_sd role endpoints, served over HTTP SD)', () => {
  it('one target per address and port, ready and not ready, with the service, endpoint and pod meta labels', () => {
    const groups = endpointTargets(
      [endpoints],
      [service],
      [pod('c-a', '10.244.77.5'), pod('c-b', '10.244.77.6')],
    );
    expect(groups.map((g) => g.targets)).toEqual([['10.244.77.5:9090'], ['10.244.77.6:9090']]);
    expect(groups[0]!.labels).toEqual({
      __meta_kubernetes_namespace: ns,
      __meta_kubernetes_endpoints_name: 'embedctl-controller-metrics',
      __meta_kubernetes_endpoint_ready: 'true',
      __meta_kubernetes_endpoint_port_name: 'metrics',
      __meta_kubernetes_endpoint_port_protocol: 'TCP',
      __meta_kubernetes_endpoint_address_target_kind: 'Pod',
      __meta_kubernetes_endpoint_address_target_name: 'c-a',
      __meta_kubernetes_service_name: 'embedctl-controller-metrics',
      __meta_kubernetes_service_label_app_kubernetes_io_name: 'embedctl',
      __meta_kubernetes_service_labelpresent_app_kubernetes_io_name: 'true',
      __meta_kubernetes_pod_name: 'c-a',
      __meta_kubernetes_pod_ip: '10.244.77.5',
      __meta_kubernetes_pod_phase: 'Running',
      __meta_kubernetes_pod_container_name: 'controller',
    });
    expect(groups[1]!.labels.__meta_kubernetes_endpoint_ready).toBe('false');
  });

  it('an address whose pod is gone keeps the endpoint and service labels but no pod labels', () => {
    const [g] = endpointTargets([endpoints], [service], []);
    expect(g!.labels.__meta_kubernetes_service_name).toBe('embedctl-controller-metrics');
    expect(Object.keys(g!.labels).filter((k) => k.startsWith('__meta_kubernetes_pod_'))).toEqual([]);
  });
});
