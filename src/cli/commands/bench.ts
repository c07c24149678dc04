/**
 * `sluice bench URL [-c N] [-d DURATION] [--compare URL2] [--json] ...`: load-test one URL, or two
 * alternately, and print the summary. Exit 0 when every target answered at least one request with
 * a 2xx, 1 when one did not (refused, unreachable, only errors), 2 for bad arguments.
 *
 *   arguments ─► parseBenchArgs ─► probeTarget ─► planRuns ─► runPlan (autocannon, progress bar)
 *             ─► summarise ─► compareSummaries ─► render (table or JSON) ─► exit code
 */
import { compareSummaries } from '../../ops/bench/bench-comparison.js';
import { type BenchArgs, type BenchOptions, parseBenchArgs } from '../../ops/bench/bench-options.js';
import { type PlanOutcome, runPlan } from '../../ops/bench/bench-runner.js';
import { type BenchSummary, succeeded, summarise } from '../../ops/bench/bench-summary.js';
import { ProgressBar, runLabel } from '../../ops/bench/progress-bar.js';
import { renderComparison } from '../../ops/bench/render-comparison.js';
import { comparisonJson, summaryJson } from '../../ops/bench/render-json.js';
import { renderSummary } from '../../ops/bench/render-summary.js';
import { type BenchTarget, planRuns } from '../../ops/bench/run-plan.js';
import { probeTarget } from '../../ops/bench/target-probe.js';

/** Runs the benchmark and returns the exit code. */
export async function runBench(url: string, args: BenchArgs): Promise<number> {
  const parsed = parseBenchArgs(url, args);
  if (!parsed.ok) {
    for (const problem of parsed.problems) process.stderr.write(`sluice bench: ${problem}\n`);
    return 2;
  }
  const options = parsed.options;
  const targets: { target: BenchTarget; url: string }[] = [{ target: 'a', url: options.url }];
  if (options.compareUrl !== null) targets.push({ target: 'b', url: options.compareUrl });

  const unreachable = await Promise.all(targets.map((t) => probeTarget(t.url, options.timeoutMs)));
  let outcome: PlanOutcome = { runs: { a: [], b: [] }, interrupted: false };
  if (unreachable.every((code) => code === null)) {
    outcome = await runWithProgress(options);
  } else {
    for (const [i, code] of unreachable.entries()) {
      if (code !== null) {
        process.stderr.write(
          `sluice bench: cannot connect to ${targets[i]!.url}: ${code}; is the server running?\n`,
        );
      }
    }
  }

  const summaries = targets.map((t, i) =>
    summarise({
      url: t.url,
      method: options.method,
      connections: options.connections,
      pipelining: options.pipelining,
      keepAlive: options.keepAlive,
      runs: outcome.runs[t.target],
      unreachable: unreachable[i] ?? null,
    }),
  );
  const [a, b] = summaries as [BenchSummary, BenchSummary | undefined];
  if (b === undefined) {
    process.stdout.write(options.json ? summaryJson(a) : renderSummary(a));
  } else {
    const comparison = compareSummaries(a, b);
    process.stdout.write(options.json ? comparisonJson(comparison) : renderComparison(comparison));
  }

  if (outcome.interrupted) {
    process.stderr.write(
      `sluice bench: interrupted; measured ${a.durationS.toFixed(2)} s of ${(options.durationMs / 1000).toFixed(2)} s\n`,
    );
  }
  const failed = summaries.filter((s) => !succeeded(s));
  // An unreachable target was reported above; the others were not loaded, so say nothing of them.
  if (unreachable.every((c) => c === null)) {
    for (const s of failed) {
      process.stderr.write(
        `sluice bench: no 2xx answer from ${s.url} (${s.requests.total} answers, ${s.errors.total} errors)\n`,
      );
    }
  }
  return failed.length === 0 ? 0 : 1;
}

/**
 * Runs the plan with the progress bar on a terminal. Ctrl-C stops the load and still prints what was
 * measured; a second Ctrl-C exits at once with 1.
 */
async function runWithProgress(options: BenchOptions): Promise<PlanOutcome> {
  const plan = planRuns(options);
  const compare = options.compareUrl !== null;
  const bar =
    !options.json && process.stderr.isTTY === true
      ? new ProgressBar(process.stderr, plan, (run) => runLabel(run, options.rounds, compare))
      : null;
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(1);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await runPlan(
      plan,
      options,
      {
        onRunStart: (run, index) => bar?.startRun(run, index),
        onResponse: (status) => bar?.response(status),
        onError: () => bar?.error(),
      },
      controller.signal,
    );
  } finally {
    bar?.stop();
    process.off('SIGINT', onSigint);
  }
}

/** The options as commander hands them over. */
export type BenchCommandArgs = BenchArgs;
