import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HealthServer } from '../../../../core/http/health-server.js';
import { createLogger } from '../../../../core/log.js';
import { CompactorMetrics } from '../../../../compactor/metrics.js';
import { StreamMetrics } from '../../../../stream/metrics.js';

describe('health and metrics endpoint', () => {
  it('serves /healthz, /readyz from the probes and the embedctl_ metrics on /metrics', async () => {
    let ready = false;
    // The compactor's wiring: one injected registry for its metrics (compactor/command.ts).
    const register = new Registry();
    const srv = new HealthServer({
      port: 0,
      host: '127.0.0.1',
      registry: register,
      probes: { healthy: () => true, ready: () => ready },
      log: createLogger('test', 'silent'),
    });
    await srv.listen();
    try {
      const url = (p: string) => `http://127.0.0.1:${srv.port}${p}`;
      expect((await fetch(url('/healthz'))).status).toBe(200);
      expect((await fetch(url('/readyz'))).status).toBe(503);
      ready = true;
      expect((await fetch(url('/readyz'))).status).toBe(200);
      // On the registry the compactor program gives them (compactor/command.ts).
      const compactorMetrics = new CompactorMetrics(register);
      const streamMetrics = new StreamMetrics(register);
      compactorMetrics.merged.inc({ collection: 'lines', how: 'added' }, 3);
      compactorMetrics.dlq.inc({ queue: 'lines', reason: 'InvalidMessage' });
      streamMetrics.records.inc({ event: 'INSERT' });
      const body = await (await fetch(url('/metrics'))).text();
      expect(body).toContain('embedctl_compactor_merged_vectors_total{collection="lines",how="added"} 3');
      expect(body).toContain('embedctl_dlq_messages_total{queue="lines",reason="InvalidMessage"} 1');
      expect(body).toContain('embedctl_stream_records_total{event="INSERT"} 1');
      for (const type of [
        'embedctl_compactor_publish_seconds histogram',
        'embedctl_compactor_merge_seconds histogram',
        'embedctl_compaction_lag_seconds histogram',
        'embedctl_compactor_versions gauge',
        'embedctl_compactor_runs_total counter',
      ]) {
        expect(body).toContain(`# TYPE ${type}`);
      }
      expect((await fetch(url('/nope'))).status).toBe(404);
    } finally {
      await srv.close();
    }
  });
});
