/**
 * A one-line progress bar per stage on stderr, only when stderr is a TTY (CI logs and `--json` stay clean).
 * Deliberately tiny: a dependency for a progress bar is not worth it.
 */
export class Progress {
  private readonly bars = new Map<string, { total: number; done: number; t0: number }>();
  private readonly enabled: boolean;

  constructor(
    wanted: boolean,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = wanted && Boolean(out.isTTY);
  }

  start(stage: string, total: number): void {
    this.bars.set(stage, { total, done: 0, t0: Date.now() });
    this.draw(stage);
  }

  update(stage: string, done: number): void {
    const bar = this.bars.get(stage);
    if (!bar || bar.done === done) return;
    bar.done = done;
    this.draw(stage);
  }

  /** Ends one stage's line (or every open line). */
  stop(stage?: string): void {
    for (const name of stage ? [stage] : [...this.bars.keys()]) {
      if (!this.bars.has(name)) continue;
      this.draw(name);
      if (this.enabled) this.out.write('\n');
      this.bars.delete(name);
    }
  }

  private draw(stage: string): void {
    const bar = this.bars.get(stage);
    if (!this.enabled || !bar) return;
    const width = 30;
    const share = bar.total > 0 ? Math.min(1, bar.done / bar.total) : 1;
    const filled = Math.round(share * width);
    const secs = ((Date.now() - bar.t0) / 1000).toFixed(1);
    this.out.write(
      `\r${stage.padEnd(8)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${bar.done}/${bar.total} ${secs}s`,
    );
  }
}
