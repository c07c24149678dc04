/**
 * The live progress line on stderr while the load runs, for a terminal only: nothing is drawn when
 * stderr is not a TTY (a pipe or a log file would fill with carriage returns) or with `--json`.
 *
 *   round 2/3 B    [=========>          ]   45%  4.5/10.0 s  12,345 req  2,468 req/s  3 err
 *
 * Hand-written rather than autocannon's own `track()`: that one also prints its banner and result
 * tables on the same stream, redraws from a 1 s tick (a 1 s round would jump from 0% to 100%), and
 * follows one run at a time, where a comparison is up to 2 x rounds + 2 runs that read as one bar.
 */
import { formatCount } from './bench-format.js';
import type { PlannedRun } from './run-plan.js';

/** What one line of the bar shows. */
export interface ProgressState {
  readonly label: string;
  /** Over the whole plan. */
  readonly elapsedMs: number;
  readonly totalMs: number;
  /** In the current run. */
  readonly responses: number;
  readonly errors: number;
  /** Answers per second over the last second. */
  readonly perSecond: number;
}

/** The stream the bar draws on (process.stderr). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): boolean;
}

const REDRAW_MS = 100;
/** The window the live requests/s is measured over. */
const RATE_WINDOW_MS = 1000;
const ERASE_LINE = '\r\x1b[K';

/**
 * Room kept for the label and for the numbers after the bar, so the bar's width stays put while the
 * numbers grow ("round 10/10 B", " 45%  4.5/10.0 s  123,456 req  12,345 req/s  0 err"); at 80
 * columns the bar is 10 wide.
 */
const LABEL_WIDTH = 13;
const TAIL_WIDTH = 50;

/** One line of the bar, fitted to `columns` (the bar shrinks first, then goes). Pure. */
export function formatProgressLine(state: ProgressState, columns: number): string {
  const fraction = state.totalMs > 0 ? Math.min(1, Math.max(0, state.elapsedMs / state.totalMs)) : 0;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const time = `${(state.elapsedMs / 1000).toFixed(1)}/${(state.totalMs / 1000).toFixed(1)} s`;
  const tail = `${percent}  ${time}  ${formatCount(state.responses)} req  ${formatCount(state.perSecond)} req/s  ${formatCount(state.errors)} err`;
  const label = state.label.padEnd(LABEL_WIDTH);
  // Two-space gaps and the brackets around the bar; one column spare so the cursor never wraps.
  const width = Math.min(30, columns - 1 - LABEL_WIDTH - TAIL_WIDTH - 6);
  if (width < 10) return `${label}  ${tail}`.slice(0, Math.max(0, columns - 1));
  const filled = Math.floor(fraction * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
  return `${label}  [${bar}]  ${tail}`.slice(0, columns - 1);
}

/** The label of a run: `running`, `warm-up`, or with `--compare` `warm-up A`, `round 2/3 B`. */
export function runLabel(run: PlannedRun, rounds: number, compare: boolean): string {
  const target = compare ? ` ${run.target.toUpperCase()}` : '';
  if (run.warmup) return `warm-up${target}`;
  return compare ? `round ${run.round}/${rounds}${target}` : 'running';
}

/** The bar over a whole plan; feed it the runner's events, then `stop()`. */
export class ProgressBar {
  readonly #stream: ProgressStream;
  readonly #plan: readonly PlannedRun[];
  readonly #label: (run: PlannedRun) => string;
  readonly #totalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #run: PlannedRun | null = null;
  #doneMs = 0;
  #runStartedAt = 0;
  #responses = 0;
  #errors = 0;
  /** (time, responses) at recent redraws, oldest first, for the live rate. */
  #samples: { at: number; responses: number }[] = [];

  constructor(stream: ProgressStream, plan: readonly PlannedRun[], label: (run: PlannedRun) => string) {
    this.#stream = stream;
    this.#plan = plan;
    this.#label = label;
    this.#totalMs = plan.reduce((ms, run) => ms + run.durationMs, 0);
  }

  /** A run of the plan starts: counters restart, the elapsed time carries on. */
  startRun(run: PlannedRun, index: number): void {
    this.#doneMs = this.#plan.slice(0, index).reduce((ms, r) => ms + r.durationMs, 0);
    this.#run = run;
    this.#runStartedAt = Date.now();
    this.#responses = 0;
    this.#errors = 0;
    this.#samples = [{ at: this.#runStartedAt, responses: 0 }];
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
      this.#timer.unref();
    }
    this.#draw();
  }

  /** An answer arrived; a non-2xx one counts as an error too. */
  response(statusCode: number): void {
    this.#responses++;
    if (statusCode < 200 || statusCode > 299) this.#errors++;
  }

  /** A request was lost (socket error, timeout). */
  error(): void {
    this.#errors++;
  }

  /** Stops redrawing and erases the line, so what follows starts on a clean line. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#run !== null) this.#stream.write(ERASE_LINE);
    this.#run = null;
  }

  /** The terminal's width; 80 when it reports none (0 under `script` or a serial console). */
  #columns(): number {
    const columns = this.#stream.columns;
    return columns !== undefined && columns > 0 ? columns : 80;
  }

  #draw(): void {
    const run = this.#run;
    if (run === null) return;
    const now = Date.now();
    this.#samples.push({ at: now, responses: this.#responses });
    while (this.#samples.length > 2 && now - this.#samples[1]!.at >= RATE_WINDOW_MS) this.#samples.shift();
    const oldest = this.#samples[0]!;
    const span = now - oldest.at;
    const state: ProgressState = {
      label: this.#label(run),
      elapsedMs: this.#doneMs + Math.min(run.durationMs, now - this.#runStartedAt),
      totalMs: this.#totalMs,
      responses: this.#responses,
      errors: this.#errors,
      perSecond: span > 0 ? ((this.#responses - oldest.responses) * 1000) / span : 0,
    };
    this.#stream.write(`${ERASE_LINE}${formatProgressLine(state, this.#columns())}`);
  }
}
