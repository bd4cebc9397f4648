import type { Lease } from 'kubernetes-types/coordination/v1.js';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LeaderElector } from '../../../../core/kube/leader-election.js';
import { KubeApiError, type Kube, type RequestOptionsK } from '../../../../core/kube/rest.js';

/** One Lease in memory behind the apiserver's rules: create once, replace only at the current resourceVersion. */
function leaseServer() {
  const state: { lease: Lease | undefined; rv: number } = { lease: undefined, rv: 0 };
  const kube: Kube = {
    async request<T>(method: string, _path: string, opts: RequestOptionsK = {}): Promise<T> {
      const body = structuredClone(opts.body) as Lease;
      if (method === 'GET') {
        if (!state.lease) throw new KubeApiError(404, 'NotFound', 'not found');
        return structuredClone(state.lease) as T;
      }
      if (method === 'POST' && state.lease) throw new KubeApiError(409, 'AlreadyExists', 'exists');
      if (method === 'PUT' && body.metadata?.resourceVersion !== state.lease?.metadata?.resourceVersion) {
        throw new KubeApiError(409, 'Conflict', 'conflict');
      }
      state.lease = { ...body, metadata: { ...body.metadata, resourceVersion: String(++state.rv) } };
      return structuredClone(state.lease) as T;
    },
    stream: async () => undefined,
  };
  return { kube, state };
}

const log = pino({ level: 'silent' });
const elector = (kube: Kube, identity: string) =>
  new LeaderElector(kube, {
    namespace: 'ns',
    name: 'leader',
    identity,
    leaseDurationMs: 3_000,
    renewDeadlineMs: 2_000,
    retryPeriodMs: 20,
    log,
  });

describe('LeaderElector (over the LeaseLock)', () => {
  it('wins a free Lease, renews it, steps down at once when another holder shows up, and releases on stop', async () => {
    const { kube, state } = leaseServer();
    const a = elector(kube, 'pod-a');
    expect(await a.acquire(AbortSignal.timeout(1_000))).toBe(true);
    expect(a.isLeader()).toBe(true);
    expect(state.lease?.spec).toMatchObject({ holderIdentity: 'pod-a', leaseTransitions: 1 });
    const acquired = state.lease?.spec?.acquireTime;

    const stop = new AbortController();
    const holding = a.hold(stop.signal);
    await new Promise((r) => setTimeout(r, 100));
    expect(state.lease?.spec?.acquireTime).toBe(acquired); // renewals keep acquireTime
    stop.abort();
    expect(await holding).toBe('stopped');
    await a.release();
    expect(state.lease?.spec?.holderIdentity).toBe('');

    // A standby takes the released Lease within one retry period, with the next token.
    const b = elector(kube, 'pod-b');
    expect(await b.acquire(AbortSignal.timeout(1_000))).toBe(true);
    expect(state.lease?.spec).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 2 });

    // Someone else writes itself in (as after our pause): the next renewal sees it and steps down.
    state.lease = { ...state.lease, spec: { ...state.lease!.spec, holderIdentity: 'pod-c' } };
    expect(await b.hold(AbortSignal.timeout(1_000))).toBe('lost');
    expect(b.isLeader()).toBe(false);
  });

  it('a standby does not take a Lease that keeps being renewed', async () => {
    const { kube } = leaseServer();
    const a = elector(kube, 'pod-a');
    await a.acquire(AbortSignal.timeout(1_000));
    const stop = new AbortController();
    const holding = a.hold(stop.signal);
    const b = elector(kube, 'pod-b');
    expect(await b.acquire(AbortSignal.timeout(300))).toBe(false);
    stop.abort();
    await holding;
  });
});
