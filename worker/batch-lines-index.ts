import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { LinesIndex, LinesIndexSource } from '../core/ports/lines-index.js';
import type { VectorStore } from '../core/ports/vector-store.js';
import { batchedQueries } from './batched-queries.js';
import type { PhaseTimer } from './phase-timer.js';

/** The store to resolve merchants against, or why there is none. */
export type MerchantIndex = VectorStore | { unavailable: string };

/**
 * The batch's view of the live `lines` snapshot: opened on first need, once, shared by every item (its merchant
 * queries batched across receipts), closed when the batch ends. Opening never fails an item: it says why instead.
 */
export class BatchLinesIndex {
  private opening: Promise<MerchantIndex> | undefined;
  private opened: LinesIndex | undefined;

  constructor(
    private readonly source: LinesIndexSource | undefined,
    private readonly timer: PhaseTimer,
    private readonly log: Logger,
  ) {}

  /** Never rejects. */
  get(): Promise<MerchantIndex> {
    return (this.opening ??= this.open());
  }

  /** The snapshot the batch used; undefined when none was opened. */
  get snapshot(): Pick<LinesIndex, 'version' | 'origin'> | undefined {
    return this.opened && { version: this.opened.version, origin: this.opened.origin };
  }

  /**
   * Closes the snapshot — one still opening (every item failed before it was needed) once it is open: its Chroma
   * server would otherwise keep the worker process alive.
   */
  async close(): Promise<void> {
    await this.opening;
    await this.opened?.close().catch((err: unknown) => this.log.warn({ err }, 'closing lines snapshot'));
  }

  private async open(): Promise<MerchantIndex> {
    const source = this.source;
    if (!source) return { unavailable: 'merchant resolution disabled' };
    try {
      this.opened = await this.timer.timed('openIndex', () => source.open());
      return this.opened ? batchedQueries(this.opened.store) : { unavailable: 'no lines snapshot yet' };
    } catch (err) {
      this.log.warn({ err }, 'lines snapshot unavailable');
      return { unavailable: `lines snapshot unavailable: ${errorMessage(err)}` };
    }
  }
}
