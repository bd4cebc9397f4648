import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The one way a component declares its prom-client metrics: each on the registry it was given (the one its /metrics
 * serves, or a private one), in one call. Names, help texts and label names are what dashboards/ and tests read.
 */
export function metricsOn(registry: Registry) {
  const registers = [registry];
  return {
    counter: <L extends string = string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers }),
    gauge: <L extends string = string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge<L>({ name, help, labelNames, registers }),
    histogram: <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
      new Histogram<L>({ name, help, labelNames, buckets, registers }),
  };
}
export type MetricsOn = ReturnType<typeof metricsOn>;

/**
 * The base class of a component's metrics: `new` creates the metrics `declare` lists on the registry it is given and
 * holds them as fields, so each metric is written once (its type comes from its declaration).
 */
export function metricsClass<T extends object>(declare: (m: MetricsOn) => T) {
  return class {
    constructor(registry: Registry) {
      Object.assign(this, declare(metricsOn(registry)));
    }
  } as new (registry: Registry) => Readonly<T>;
}
