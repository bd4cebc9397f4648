import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Informer } from '../../../../core/kube/informer.js';
import { KubeApiError, type Kube, type Query } from '../../../../core/kube/rest.js';
import type { KubeObject } from '../../../../core/kube/types.js';

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, resourceVersion: rv } });

/** A scripted API: each list returns the next snapshot; each watch runs the next script. */
class FakeKube implements Kube {
  lists: { items: KubeObject[]; rv: string }[] = [];
  watches: ((emit: (v: unknown) => void, signal: AbortSignal) => Promise<void>)[] = [];
  listCalls = 0;
  watchQueries: Query[] = [];
  async request<T>(): Promise<T> {
    const snap = this.lists[Math.min(this.listCalls++, this.lists.length - 1)]!;
    return { items: structuredClone(snap.items), metadata: { resourceVersion: snap.rv } } as T;
  }
  async stream(
    _path: string,
    query: Query,
    onLine: (v: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.watchQueries.push(query);
    const script = this.watches.shift();
    if (!script)
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    return script(onLine, signal);
  }
}

const hang = (signal: AbortSignal) =>
  new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));

function run(kube: FakeKube, silenceMs = 60_000) {
  const relists: string[] = [];
  const events: string[] = [];
  const informer = new Informer<KubeObject>(kube, {
    path: '/x',
    name: 'x',
    log: pino({ level: 'silent' }),
    silenceMs,
    onRelist: (r) => relists.push(r),
  });
  informer.on('add', (o) => events.push(`add ${o.metadata.name}`));
  informer.on('update', (o) => events.push(`update ${o.metadata.name}`));
  informer.on('delete', (o) => events.push(`delete ${o.metadata.name}`));
  const stop = new AbortController();
  const done = informer.start(stop.signal);
  return { informer, relists, events, stop: async () => (stop.abort(), await done) };
}

const until = async (f: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Informer', () => {
  it('lists, then applies watch events from the list resourceVersion', async () => {
    const kube = new FakeKube();
    kube.lists = [{ items: [obj('a', '1')], rv: '10' }];
    kube.watches = [
      async (emit, signal) => {
        emit({ type: 'ADDED', object: obj('b', '11') });
        emit({ type: 'MODIFIED', object: obj('a', '12') });
        emit({ type: 'DELETED', object: obj('b', '13') });
        await hang(signal);
      },
    ];
    const r = run(kube);
    await until(() => r.events.length === 4);
    expect(r.events).toEqual(['add a', 'add b', 'update a', 'delete b']);
    expect(kube.watchQueries[0]).toMatchObject({ resourceVersion: '10', allowWatchBookmarks: true });
    expect(r.informer.get('a')?.metadata.resourceVersion).toBe('12');
    await r.stop();
  });

  it('relists on 410 Gone (ERROR event) and emits only what changed', async () => {
    const kube = new FakeKube();
    kube.lists = [
      { items: [obj('a', '1'), obj('b', '2')], rv: '10' },
      { items: [obj('a', '1'), obj('c', '20')], rv: '30' },
    ];
    kube.watches = [
      async (emit) => emit({ type: 'ERROR', object: { code: 410, message: 'too old resource version' } }),
    ];
    const r = run(kube);
    await until(() => r.relists.length === 2 && r.events.length === 4);
    expect(r.relists).toEqual(['initial', 'gone']);
    expect(r.events).toEqual(['add a', 'add b', 'delete b', 'add c']);
    await until(() => kube.watchQueries.length === 2);
    expect(kube.watchQueries[1]?.resourceVersion).toBe('30');
    await r.stop();
  });

  it('relists on a 410 response to the watch request', async () => {
    const kube = new FakeKube();
    kube.lists = [{ items: [], rv: '1' }];
    kube.watches = [async () => Promise.reject(new KubeApiError(410, 'Expired', 'gone'))];
    const r = run(kube);
    await until(() => r.relists.length === 2);
    expect(r.relists[1]).toBe('gone');
    await r.stop();
  });

  it('relists when the watch goes silent (watchdog), and re-watches after a clean server close', async () => {
    const kube = new FakeKube();
    kube.lists = [{ items: [obj('a', '1')], rv: '5' }];
    kube.watches = [async () => undefined, async (_emit, signal) => hang(signal)];
    const r = run(kube, 200);
    await until(() => r.relists.includes('silence'), 5000);
    expect(kube.watchQueries.length).toBeGreaterThanOrEqual(2); // closed → re-watched without a relist first
    expect(r.relists[0]).toBe('initial');
    expect(r.events).toEqual(['add a']); // a relist with nothing changed emits nothing
    await r.stop();
  });
});
