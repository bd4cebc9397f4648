/** Prometheus's HTTP API (the real node's Prometheus, `nodeEnv().prometheusUrl`), as Grafana and alerting read it. */

export interface RangeSeries {
  metric: Record<string, string>;
  values: [number, string][];
}
export interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

async function api<T>(
  base: string,
  path: string,
  params: Record<string, string | string[]> = {},
): Promise<T> {
  const url = new URL(`/api/v1/${path}`, base);
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) url.searchParams.append(k, x);
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  const body = (await res.json()) as { status: string; data: T; error?: string };
  if (body.status !== 'success') throw new Error(`GET ${url}: ${res.status} ${body.error ?? ''}`);
  return body.data;
}

export async function queryRange(
  base: string,
  expr: string,
  range: { start: number; end: number; stepSeconds: number },
): Promise<RangeSeries[]> {
  const data = await api<{ result: RangeSeries[] }>(base, 'query_range', {
    query: expr,
    start: String(range.start / 1000),
    end: String(range.end / 1000),
    step: String(range.stepSeconds),
  });
  return data.result;
}

export async function labelValues(
  base: string,
  label: string,
  match: string,
  range: { start: number; end: number },
): Promise<string[]> {
  return api<string[]>(base, `label/${label}/values`, {
    'match[]': match,
    start: String(range.start / 1000),
    end: String(range.end / 1000),
  });
}

export async function alerts(base: string): Promise<Alert[]> {
  return (await api<{ alerts: Alert[] }>(base, 'alerts')).alerts;
}

export async function activeTargets(
  base: string,
): Promise<{ labels: Record<string, string>; health: string; scrapePool: string; lastError: string }[]> {
  return (
    await api<{
      activeTargets: {
        labels: Record<string, string>;
        health: string;
        scrapePool: string;
        lastError: string;
      }[];
    }>(base, 'targets', { state: 'active' })
  ).activeTargets;
}
