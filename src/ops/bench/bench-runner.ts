/**
 * Runs the plan with autocannon, one run after another, and hands each measured run over as
 * autocannon's counters plus what autocannon does not keep well enough itself: response times to
 * the microsecond, and socket errors by code.
 *
 *   plan ──► runOnce (autocannon) ──► MeasuredRun[] per target ──► summarise (pure)
 *                 │ response / reqError events
 *                 └──► hooks (progress bar)
 */
import type { AutocannonClient } from './autocannon.js';
import { loadAutocannon } from './autocannon.js';
import type { BenchOptions } from './bench-options.js';
import type { MeasuredRun } from './bench-summary.js';
import { honourConnectionClose } from './connection-close.js';
import { CLOSED_UNDER_REQUEST, dropLostRequests } from './dropped-requests.js';
import { LatencyHistogram } from './latency-histogram.js';
import type { BenchTarget, PlannedRun } from './run-plan.js';

/**
 * autocannon reads its stop flag only when it takes a sample: one every 100 ms keeps a run within
 * 100 ms of its duration, where its default of 1 s would stretch a 500 ms round to a whole second.
 * (Its per-sample statistics are not used: rates here are totals over the measured time.)
 */
const SAMPLE_MS = 100;

/** What the runner reports as it goes; all optional. */
export interface RunHooks {
  /** A run starts; `index` into the plan. */
  onRunStart?(run: PlannedRun, index: number): void;
  /** An answer arrived. */
  onResponse?(statusCode: number): void;
  /** A request was lost to a socket error or a timeout. */
  onError?(): void;
}

/** The measured runs of each target, and whether the plan was cut short. */
export interface PlanOutcome {
  readonly runs: Readonly<Record<BenchTarget, readonly MeasuredRun[]>>;
  /** The signal fired: the run in progress was stopped early (and kept), the rest skipped. */
  readonly interrupted: boolean;
}

/** Runs every planned run in order; warm-ups are run and dropped. */
export async function runPlan(
  plan: readonly PlannedRun[],
  options: BenchOptions,
  hooks: RunHooks = {},
  signal?: AbortSignal,
): Promise<PlanOutcome> {
  const runs: Record<BenchTarget, MeasuredRun[]> = { a: [], b: [] };
  for (const [index, run] of plan.entries()) {
    if (signal?.aborted) return { runs, interrupted: true };
    hooks.onRunStart?.(run, index);
    const measured = await runOnce(run, options, hooks, signal);
    if (!run.warmup) runs[run.target].push(measured);
  }
  return { runs, interrupted: signal?.aborted === true };
}

/** One autocannon run against `run.url` for `run.durationMs`; stopped early when `signal` fires. */
export async function runOnce(
  run: PlannedRun,
  options: BenchOptions,
  hooks: RunHooks = {},
  signal?: AbortSignal,
): Promise<MeasuredRun> {
  const latency = new LatencyHistogram();
  const socketErrors: Record<string, number> = {};
  const countSocketError = (code: string) => {
    socketErrors[code] = (socketErrors[code] ?? 0) + 1;
  };
  const instance = loadAutocannon()({
    url: run.url,
    connections: options.connections,
    duration: run.durationMs / 1000,
    sampleInt: SAMPLE_MS,
    pipelining: options.pipelining,
    timeout: options.timeoutMs / 1000,
    method: options.method,
    headers: { ...options.headers },
    ...(options.body === null ? {} : { body: options.body }),
    setupClient: (client: AutocannonClient) => {
      honourConnectionClose(client);
      dropLostRequests(client, () => {
        countSocketError(CLOSED_UNDER_REQUEST);
        hooks.onError?.();
      });
      client.on('connError', (err) => countSocketError(err.code ?? 'EUNKNOWN'));
    },
  });
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    latency.record(responseTime);
    hooks.onResponse?.(statusCode);
  });
  instance.on('reqError', () => hooks.onError?.());
  const stop = () => instance.stop();
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const result = await instance;
    return { result, latency, socketErrors };
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
