/** A batch attempt that failed: the messages still unsettled and why. */
export interface Failure<M> {
  msgs: M[];
  err: unknown;
}

export type Attempt<M, R> = (msgs: M[], first: boolean) => Promise<R | Failure<M>>;

const isFailure = <M, R>(x: R | Failure<M>): x is Failure<M> =>
  typeof x === 'object' && x !== null && 'err' in x;

/**
 * One attempt at `msgs`; when it fails, bisects: each half is tried on its own, and the failing half is bisected
 * further, so innocent messages commit and only the culprit is retried (and dead-lettered after maxReceives).
 * When both halves fail, the cause is not one message (an outage, several bad ones): both go back as they are; when
 * neither does, the failure did not repeat and nothing goes back. The decision alone: `attempt` does the work (its
 * `first` is true only for the whole batch), the caller settles what `failures` returns, in order.
 */
export async function bisect<M, R>(
  msgs: M[],
  attempt: Attempt<M, R>,
  onNarrowed: (from: number, to: number) => void = () => undefined,
): Promise<{ done: R[]; failures: Failure<M>[] }> {
  const first = await attempt(msgs, true);
  if (!isFailure<M, R>(first)) return { done: [first], failures: [] };
  let failing: Failure<M> = { msgs: first.msgs, err: first.err };
  const done: R[] = [];
  while (failing.msgs.length > 1) {
    const tries: (R | Failure<M>)[] = [];
    for (const h of halves(failing.msgs)) tries.push(await attempt(h, false));
    const failed = tries.filter((t) => isFailure<M, R>(t));
    done.push(...tries.filter((t): t is R => !isFailure<M, R>(t)));
    if (failed.length === 2) return { done, failures: failed };
    if (failed.length === 0) return { done, failures: [] };
    onNarrowed(failing.msgs.length, failed[0]!.msgs.length);
    failing = failed[0]!;
  }
  return { done, failures: [failing] };
}

/** The two halves a failing batch is retried as; the first takes the odd one out. */
export function halves<M>(msgs: M[]): [M[], M[]] {
  const mid = Math.ceil(msgs.length / 2);
  return [msgs.slice(0, mid), msgs.slice(mid)];
}
