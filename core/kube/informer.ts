import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs } from '../backoff.js';
import type { Logger } from '../log.js';
import { isGone, type Kube } from './rest.js';
import type { KubeObject } from './types.js';

/**
 * A list+watch cache of one resource collection (client-go's reflector + store), hardened against what
 * client-node users report (docs/adr/0007-hand-written-kube-client.md):
 * - `410 Gone` (in the response or as an ERROR event) → relist;
 * - a watch that says nothing for `silenceMs` (not even a bookmark or a server-side close) → abort and relist;
 * - any other error → re-watch from the last resourceVersion after a capped backoff, relisting after repeated errors.
 * Handlers see `add`/`update`/`delete`; a relist emits only what changed. `managedFields` are dropped to save memory.
 */
export type InformerEvent = 'add' | 'update' | 'delete';
export type Handler<T> = (obj: T, old?: T) => void;

export interface InformerOptions {
  /** Collection path, e.g. `/apis/batch/v1/namespaces/ns/jobs`. */
  path: string;
  /** For logs and metrics, e.g. `embeddingjobs`. */
  name: string;
  labelSelector?: string;
  /** Relist when no byte arrived for this long. Default 5 min. */
  silenceMs?: number;
  /** Server-side watch timeout range (seconds); the server closes the watch cleanly after it. Default 240–300. */
  watchTimeoutSeconds?: [number, number];
  /** Page size of lists. Default 500. */
  pageSize?: number;
  log: Logger;
  onRelist?: (reason: 'initial' | 'gone' | 'silence' | 'error') => void;
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; message?: string };
}

interface ListResponse<T> {
  metadata: { resourceVersion: string; continue?: string };
  items: T[];
}

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Record<InformerEvent, Handler<T>[]> = { add: [], update: [], delete: [] };
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  /** When the last byte (event, bookmark, list) arrived (ms since epoch). */
  lastActivity = 0;
  watching = false;

  constructor(
    private readonly kube: Kube,
    private readonly opts: InformerOptions,
  ) {}

  on(event: InformerEvent, handler: Handler<T>): this {
    this.handlers[event].push(handler);
    return this;
  }

  get(name: string): T | undefined {
    return this.store.get(name);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Healthy when something arrived within the silence limit (or the watch just started). */
  healthy(now = Date.now()): boolean {
    return this.synced && now - this.lastActivity < (this.opts.silenceMs ?? 300_000) * 2;
  }

  /** Runs until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    let needList = true;
    let reason: 'initial' | 'gone' | 'silence' | 'error' = 'initial';
    let errors = 0;
    while (!signal.aborted) {
      try {
        if (needList) {
          this.opts.onRelist?.(reason);
          await this.relist(signal);
          needList = false;
          errors = 0;
        }
        const outcome = await this.watch(signal);
        if (outcome === 'gone' || outcome === 'silence') {
          this.opts.log.info({ informer: this.opts.name, reason: outcome }, 'relisting');
          needList = true;
          reason = outcome;
        }
        errors = 0;
      } catch (err) {
        if (signal.aborted) break;
        errors++;
        if (isGone(err)) {
          needList = true;
          reason = 'gone';
          continue;
        }
        if (errors >= 3) {
          needList = true;
          reason = 'error';
        }
        const delay = backoffMs(errors, { baseMs: 250, maxMs: 30_000 });
        this.opts.log.warn({ informer: this.opts.name, err, retryInMs: delay }, 'list/watch failed');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
      }
    }
    this.watching = false;
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const seen = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.kube.request<ListResponse<T>>('GET', this.opts.path, {
        query: { limit: this.opts.pageSize ?? 500, continue: cont, labelSelector: this.opts.labelSelector },
        signal,
        timeoutMs: 60_000,
      });
      for (const item of page.items) seen.set(item.metadata.name, strip(item));
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
      this.lastActivity = Date.now();
    } while (cont);
    for (const [name, old] of this.store) {
      if (!seen.has(name)) {
        this.store.delete(name);
        this.emit('delete', old);
      }
    }
    for (const [name, obj] of seen) {
      const old = this.store.get(name);
      this.store.set(name, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', obj, old);
    }
    this.resourceVersion = rv;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  /** One watch request; resolves with why it ended. */
  private async watch(signal: AbortSignal): Promise<'closed' | 'gone' | 'silence'> {
    const [lo, hi] = this.opts.watchTimeoutSeconds ?? [240, 300];
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let ended: 'closed' | 'gone' | 'silence' = 'closed';
    const silenceMs = this.opts.silenceMs ?? 300_000;
    this.lastActivity = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - this.lastActivity > silenceMs) {
          ended = 'silence';
          abort.abort();
        }
      },
      Math.min(silenceMs / 4, 5_000),
    );
    watchdog.unref();
    this.watching = true;
    try {
      await this.kube.stream(
        this.opts.path,
        {
          watch: 1,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.floor(lo + Math.random() * (hi - lo)),
          labelSelector: this.opts.labelSelector,
        },
        (value) => {
          this.lastActivity = Date.now();
          const ev = value as WatchEvent;
          if (ev.type === 'ERROR') {
            if (ev.object.code === 410) ended = 'gone';
            abort.abort();
            return;
          }
          this.apply(ev);
        },
        abort.signal,
      );
    } catch (err) {
      if (ended !== 'closed' || signal.aborted) return ended;
      throw err;
    } finally {
      clearInterval(watchdog);
      signal.removeEventListener('abort', onAbort);
      this.watching = false;
    }
    return ended;
  }

  private apply(ev: WatchEvent): void {
    const rv = ev.object.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    const obj = strip(ev.object as unknown as T);
    const name = obj.metadata.name;
    const old = this.store.get(name);
    if (ev.type === 'DELETED') {
      this.store.delete(name);
      this.emit('delete', obj);
      return;
    }
    this.store.set(name, obj);
    this.emit(old ? 'update' : 'add', obj, old);
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.handlers[event]) {
      try {
        h(obj, old);
      } catch (err) {
        this.opts.log.error({ informer: this.opts.name, err }, 'informer handler threw');
      }
    }
  }
}

function strip<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}
