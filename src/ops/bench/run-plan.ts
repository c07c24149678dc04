/**
 * The order of the load runs: warm-ups first (not measured), then the measured rounds. With
 * `--compare` the targets alternate, A then B in each round, so a drift of the machine during the
 * benchmark (thermal throttling, a noisy neighbour, a cache filling) hits both alike instead of
 * whichever ran second; `-d` is the measured time per target, split evenly over the rounds.
 *
 *   -d 6s --rounds 3 --warmup 1s:  warm A 1s | warm B 1s | A 2s | B 2s | A 2s | B 2s | A 2s | B 2s
 */
import type { BenchOptions } from './bench-options.js';

/** `a` is the URL argument, `b` the `--compare` URL. */
export type BenchTarget = 'a' | 'b';

/** One autocannon run. */
export interface PlannedRun {
  readonly target: BenchTarget;
  readonly url: string;
  /** A warm-up run: load, not measured. */
  readonly warmup: boolean;
  /** 1-based measured round; 0 for a warm-up. */
  readonly round: number;
  readonly durationMs: number;
}

/** The runs for `options`, in the order they happen. */
export function planRuns(
  options: Pick<BenchOptions, 'url' | 'compareUrl' | 'durationMs' | 'rounds' | 'warmupMs'>,
): PlannedRun[] {
  const targets: { target: BenchTarget; url: string }[] = [{ target: 'a', url: options.url }];
  if (options.compareUrl !== null) targets.push({ target: 'b', url: options.compareUrl });
  const runs: PlannedRun[] = [];
  if (options.warmupMs > 0) {
    for (const t of targets) runs.push({ ...t, warmup: true, round: 0, durationMs: options.warmupMs });
  }
  const perRound = Math.round(options.durationMs / options.rounds);
  for (let round = 1; round <= options.rounds; round++) {
    for (const t of targets) runs.push({ ...t, warmup: false, round, durationMs: perRound });
  }
  return runs;
}
