/**
 * Liveness of a lane: a batch in progress must move (`tick`) at least every `stallMs`. Timeouts bound every outside
 * call, but a hung syscall (an NFS stall) or a wedged step would still keep the batch — and its messages, through the
 * visibility heartbeat — forever; a stalled lane fails /healthz so the kubelet restarts the pod, and stops the
 * heartbeat so the messages return to the queue.
 */
export class Progress {
  private busySince: number | undefined;
  private last = 0;

  constructor(private readonly now: () => number = Date.now) {}

  begin(): void {
    this.busySince = this.last = this.now();
  }

  tick(): void {
    this.last = this.now();
  }

  end(): void {
    this.busySince = undefined;
  }

  /** How long the batch in progress has not moved (0 when idle). */
  stalledMs(): number {
    return this.busySince === undefined ? 0 : this.now() - this.last;
  }
}
