import { mkdir, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../core/log.js';
import type { QueueMessage } from '../core/ports/queue.js';
import { fsyncDir, writeDurably } from '../core/durable-fs.js';

export interface Deaths {
  /** Times the process died while this message was in the batch being processed. */
  deaths: number;
  /** …of which while it was processed alone, with the other lane idle (nothing else can have killed it). */
  alone: number;
  since: string;
}

interface State {
  inflight: string[];
  /** The batch in flight runs alone in the process (both lanes' permits held). */
  exclusive?: boolean;
  messages: Record<string, Deaths>;
}

/** Entries of messages not seen again for this long are forgotten (beyond SQS's longest retention, 14 days). */
const FORGET_MS = 15 * 24 * 3600_000;

/**
 * Durable count of process deaths per message (failure: a message that kills the compactor — OOM, a crash in
 * Chroma — never reaches `failed()`, so without this it is redelivered until retention expires). Before a batch is
 * processed its message ids are written here; a clean end clears them. A process that starts and finds ids left
 * charges each of them one death. The lane then isolates suspects (compactor/isolation.ts), so a repeat death
 * narrows down to the culprit, which goes to the DLQ with reason `CrashLoop` once it died alone `crashLimit` times.
 * Kept on the shared volume, next to the collection, because a restarted pod may run on another node.
 */
export class CrashRecord {
  private state: State = { inflight: [], messages: {} };

  constructor(
    readonly path: string,
    private readonly log: Logger,
  ) {}

  /** Loads the record and charges a death to every message left in flight; returns the ids charged. */
  async open(): Promise<string[]> {
    try {
      this.state = JSON.parse(await readFile(this.path, 'utf8')) as State;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT')
        this.log.warn({ err, path: this.path }, 'crash record unreadable; starting afresh');
      this.state = { inflight: [], messages: {} };
    }
    const charged = this.state.inflight;
    const now = new Date().toISOString();
    for (const id of charged) {
      const d = (this.state.messages[id] ??= { deaths: 0, alone: 0, since: now });
      d.deaths++;
      if (charged.length === 1 && this.state.exclusive) d.alone++;
    }
    const cutoff = Date.now() - FORGET_MS;
    for (const [id, d] of Object.entries(this.state.messages))
      if (Date.parse(d.since) < cutoff) delete this.state.messages[id];
    this.state.inflight = [];
    this.state.exclusive = false;
    if (charged.length) {
      this.log.warn(
        { messages: charged.length },
        'the previous process died mid-batch; its messages are suspects',
      );
      await this.save();
    }
    return charged;
  }

  deaths(id: string): Deaths | undefined {
    return this.state.messages[id];
  }

  /** Durably records the messages about to be processed (before anything is merged). */
  async begin(msgs: QueueMessage[], exclusive: boolean): Promise<void> {
    this.state.inflight = [...new Set(msgs.map((m) => m.id))];
    this.state.exclusive = exclusive;
    await this.save();
  }

  /** The batch ended without the process dying: nothing is in flight; `settled` messages are forgotten. */
  async end(settled: QueueMessage[]): Promise<void> {
    this.state.inflight = [];
    this.state.exclusive = false;
    for (const m of settled) delete this.state.messages[m.id];
    await this.save();
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeDurably(tmp, JSON.stringify(this.state));
    await rename(tmp, this.path);
    await fsyncDir(dirname(this.path));
  }
}
