// The dispatcher waits between passes on the controller's stop signal; each wait must take its abort listener
// away when it ends, or one accumulates per pass for the controller's lifetime.
import { EventEmitter, getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Dispatcher, type DispatchDeps } from '../../../controller/dispatch.js';
import { createLogger } from '../../../core/log.js';

function fakeInformer() {
  return Object.assign(new EventEmitter(), { waitForSync: async () => {}, list: () => [] });
}

describe('Dispatcher waits', () => {
  it('leave no abort listener behind, however many passes run', async () => {
    const d = new Dispatcher({
      ejs: fakeInformer(),
      jobs: fakeInformer(),
      settings: () => undefined, // no settings yet: each pass only schedules the next
      log: createLogger('dispatch-test', 'silent'),
    } as unknown as DispatchDeps);
    const stop = new AbortController();
    const running = d.start(stop.signal);
    for (let i = 0; i < 30; i++) {
      d.trigger();
      await sleep(30);
    }
    expect(getEventListeners(stop.signal, 'abort').length).toBeLessThanOrEqual(1);
    stop.abort();
    await running;
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
