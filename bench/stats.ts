/** The p-th percentile (0–100, nearest rank) of values already sorted ascending. */
export const percentile = (sorted: number[]) => (p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
