import { createServer } from 'node:http';

import { sdName } from '../../support/prometheus-operator.js';
import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpGet } from '../http.js';

/**
 * A stand-in for Prometheus's `kubernetes_sd_configs` role `endpoints`, which Debian's Prometheus is built without
 * ("Kubernetes support has been completely removed", its NEWS.Debian): an HTTP SD endpoint that lists the
 * Endpoints, Services and Pods of the asked namespaces from the apiserver and answers the same targets with the
 * same `__meta_kubernetes_*` labels, so the ServiceMonitor's relabelling runs unchanged on them.
 */

interface Meta {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
}
export interface EndpointsObject {
  metadata: Meta;
  subsets?: {
    addresses?: EndpointAddress[];
    notReadyAddresses?: EndpointAddress[];
    ports?: { name?: string; port: number; protocol?: string }[];
  }[];
}
interface EndpointAddress {
  ip: string;
  targetRef?: { kind: string; name: string; namespace?: string };
}
export interface PodObject {
  metadata: Meta;
  spec: { containers: { name: string; ports?: { name?: string; containerPort: number }[] }[] };
  status: { phase?: string; podIP?: string };
}
export interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** One target group per endpoint address and port, labelled as `kubernetes_sd_configs` role `endpoints` labels it. */
export function endpointTargets(
  endpoints: EndpointsObject[],
  services: { metadata: Meta }[],
  pods: PodObject[],
): TargetGroup[] {
  const svc = new Map(services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const pod = new Map(pods.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
  const groups: TargetGroup[] = [];
  for (const ep of endpoints) {
    const ns = ep.metadata.namespace;
    const service = svc.get(`${ns}/${ep.metadata.name}`);
    const serviceLabels: Record<string, string> = {};
    for (const [k, v] of Object.entries(service?.metadata.labels ?? {})) {
      serviceLabels[`__meta_kubernetes_service_label_${sdName(k)}`] = v;
      serviceLabels[`__meta_kubernetes_service_labelpresent_${sdName(k)}`] = 'true';
    }
    for (const subset of ep.subsets ?? []) {
      const addresses = [
        ...(subset.addresses ?? []).map((a) => ({ a, ready: 'true' })),
        ...(subset.notReadyAddresses ?? []).map((a) => ({ a, ready: 'false' })),
      ];
      for (const { a, ready } of addresses) {
        const p = a.targetRef?.kind === 'Pod' ? pod.get(`${ns}/${a.targetRef.name}`) : undefined;
        for (const port of subset.ports ?? []) {
          const container = p?.spec.containers.find((c) =>
            c.ports?.some((cp) => cp.containerPort === port.port),
          );
          groups.push({
            targets: [`${a.ip}:${port.port}`],
            labels: {
              __meta_kubernetes_namespace: ns,
              __meta_kubernetes_endpoints_name: ep.metadata.name,
              __meta_kubernetes_endpoint_ready: ready,
              __meta_kubernetes_endpoint_port_name: port.name ?? '',
              __meta_kubernetes_endpoint_port_protocol: port.protocol ?? 'TCP',
              ...(a.targetRef
                ? {
                    __meta_kubernetes_endpoint_address_target_kind: a.targetRef.kind,
                    __meta_kubernetes_endpoint_address_target_name: a.targetRef.name,
                  }
                : {}),
              ...(service ? { __meta_kubernetes_service_name: service.metadata.name, ...serviceLabels } : {}),
              ...(p
                ? {
                    __meta_kubernetes_pod_name: p.metadata.name,
                    __meta_kubernetes_pod_ip: p.status.podIP ?? '',
                    __meta_kubernetes_pod_phase: p.status.phase ?? '',
                    ...(container ? { __meta_kubernetes_pod_container_name: container.name } : {}),
                  }
                : {}),
            },
          });
        }
      }
    }
  }
  return groups;
}

export interface EndpointsSd extends Component {
  /** The HTTP SD URL for `namespaces` (Prometheus's `http_sd_configs[].url`). */
  url(namespaces: readonly string[]): string;
}

/** Serves `endpointTargets` of the apiserver's current objects on a loopback port; each request lists afresh. */
export async function startEndpointsSd(ctx: ComponentContext, api: ApiServer): Promise<EndpointsSd> {
  const list = async <T>(ns: string, resource: string): Promise<T[]> => {
    const url = `${api.server}/api/v1/namespaces/${encodeURIComponent(ns)}/${resource}`;
    const res = await httpGet(url, { ca: api.caPem, token: api.token, timeoutMs: 10_000 });
    if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${res.body.slice(0, 200)}`);
    return (JSON.parse(res.body) as { items: T[] }).items;
  };
  const server = createServer((req, res) => {
    const namespaces = new URL(req.url ?? '/', 'http://sd').searchParams.getAll('namespace');
    void Promise.all(
      namespaces.map(async (ns) => {
        const [endpoints, services, pods] = await Promise.all([
          list<EndpointsObject>(ns, 'endpoints'),
          list<{ metadata: Meta }>(ns, 'services'),
          list<PodObject>(ns, 'pods'),
        ]);
        return endpointTargets(endpoints, services, pods);
      }),
    ).then(
      (groups) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(groups.flat()));
      },
      (err: unknown) => {
        // Prometheus keeps the targets it had and logs this.
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(err instanceof Error ? err.message : String(err));
      },
    );
  });
  const port = await ctx.port();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  let closed: Promise<void> | undefined;
  return {
    name: 'endpoints-sd',
    url: (namespaces) =>
      `http://127.0.0.1:${port}/targets?${namespaces.map((n) => `namespace=${encodeURIComponent(n)}`).join('&')}`,
    stop: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
