/**
 * `sluice bench` arguments: the strings the command line gave, checked all at once and turned into
 * `BenchOptions` (numbers, milliseconds, a header object). Pure: every problem is returned, none
 * thrown, so the command prints them together and exits 2.
 */
import { parseDuration } from '../../core/duration.js';
import { AUTOCANNON_METHODS } from './autocannon.js';

/** The options as the command line gave them (commander's output). */
export interface BenchArgs {
  readonly connections?: string;
  readonly duration?: string;
  readonly compare?: string;
  readonly rounds?: string;
  readonly warmup?: string;
  readonly method?: string;
  readonly header?: readonly string[];
  readonly body?: string;
  readonly pipelining?: string;
  readonly timeout?: string;
  /** false with `--no-keepalive`. */
  readonly keepalive?: boolean;
  readonly json?: boolean;
}

/** Checked options for one `sluice bench` invocation. */
export interface BenchOptions {
  /** Target A, normalised (`new URL(...).href`, fragment dropped). */
  readonly url: string;
  /** Target B (`--compare`), or null. */
  readonly compareUrl: string | null;
  readonly connections: number;
  /** Measured time per target; with `--compare`, split evenly over the rounds. */
  readonly durationMs: number;
  /** Rounds per target: 1 without `--compare`. */
  readonly rounds: number;
  /** Unmeasured load per target before the first round; 0 for none. */
  readonly warmupMs: number;
  readonly method: string;
  /** Request headers as sent (names as given; repeated names joined with ", "). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | null;
  readonly pipelining: number;
  readonly timeoutMs: number;
  readonly keepAlive: boolean;
  readonly json: boolean;
}

/** The outcome of checking the arguments. */
export type ParsedBenchArgs =
  | { readonly ok: true; readonly options: BenchOptions }
  | { readonly ok: false; readonly problems: readonly string[] };

/** Defaults, documented in docs/bench.md. */
export const BENCH_DEFAULTS = {
  connections: 50,
  durationMs: 10_000,
  compareRounds: 3,
  timeoutMs: 10_000,
  pipelining: 1,
} as const;

/** Upper bounds that catch typos (`-c 50000`) before they open that many sockets. */
const MAX_CONNECTIONS = 10_000;
const MAX_PIPELINING = 256;
const MAX_ROUNDS = 100;
/** A measured run shorter than this is mostly ramp-up and teardown. */
const MIN_RUN_MS = 100;
/** autocannon refuses a timeout under 1 s (lib/validate.js). */
const MIN_TIMEOUT_MS = 1000;

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Set by autocannon from `--body`; a second one would make the request ambiguous. */
const RESERVED_HEADERS = new Set(['content-length', 'transfer-encoding']);

/** Checks `url` and the options; returns every problem found. */
export function parseBenchArgs(url: string, args: BenchArgs): ParsedBenchArgs {
  const problems: string[] = [];

  const target = parseTarget(url, 'URL', problems);
  const compareUrl = args.compare === undefined ? null : parseTarget(args.compare, '--compare', problems);
  const connections = parseCount(
    args.connections,
    '-c/--connections',
    BENCH_DEFAULTS.connections,
    MAX_CONNECTIONS,
    problems,
  );
  const pipelining = parseCount(
    args.pipelining,
    '-p/--pipelining',
    BENCH_DEFAULTS.pipelining,
    MAX_PIPELINING,
    problems,
  );

  let rounds = 1;
  if (args.rounds !== undefined && args.compare === undefined) {
    problems.push('--rounds needs --compare: rounds alternate between two targets');
  } else {
    const fallback = args.compare === undefined ? 1 : BENCH_DEFAULTS.compareRounds;
    rounds = parseCount(args.rounds, '--rounds', fallback, MAX_ROUNDS, problems);
  }

  const durationMs = parseMs(args.duration, '-d/--duration', BENCH_DEFAULTS.durationMs, problems);
  if (durationMs !== null && durationMs / rounds < MIN_RUN_MS) {
    problems.push(
      rounds === 1
        ? `-d/--duration ${args.duration} is under ${MIN_RUN_MS} ms: give e.g. 10s`
        : `-d/--duration ${args.duration} over ${rounds} rounds leaves ${Math.floor(durationMs / rounds)} ms a round: give at least ${MIN_RUN_MS * rounds}ms`,
    );
  }
  const warmupMs = parseMs(args.warmup, '--warmup', 0, problems);
  const timeoutMs = parseMs(args.timeout, '--timeout', BENCH_DEFAULTS.timeoutMs, problems);
  if (timeoutMs !== null && timeoutMs < MIN_TIMEOUT_MS) {
    problems.push(`--timeout ${args.timeout} is under 1s, the load generator's smallest timeout`);
  }

  const body = args.body ?? null;
  const method = parseMethod(args.method, body === null ? 'GET' : 'POST', problems);
  const keepAlive = args.keepalive !== false;
  const headers = parseHeaders(args.header ?? [], problems);
  if (!keepAlive && !Object.keys(headers).some((name) => name.toLowerCase() === 'connection')) {
    headers.Connection = 'close';
  }

  if (
    problems.length > 0 ||
    target === null ||
    durationMs === null ||
    warmupMs === null ||
    timeoutMs === null
  ) {
    return { ok: false, problems };
  }
  return {
    ok: true,
    options: {
      url: target,
      compareUrl,
      connections,
      durationMs,
      rounds,
      warmupMs,
      method,
      headers,
      body,
      pipelining,
      timeoutMs,
      keepAlive,
      json: args.json === true,
    },
  };
}

function parseTarget(text: string, what: string, problems: string[]): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    problems.push(
      `${what} ${JSON.stringify(text)} is not a URL: give a full one, e.g. http://127.0.0.1:8080/`,
    );
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`${what} ${JSON.stringify(text)} is not an http:// or https:// URL`);
    return null;
  }
  url.hash = '';
  return url.href;
}

function parseCount(
  text: string | undefined,
  what: string,
  fallback: number,
  max: number,
  problems: string[],
): number {
  if (text === undefined) return fallback;
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    problems.push(`${what} ${JSON.stringify(text)} is not a whole number from 1 to ${max}`);
    return fallback;
  }
  return n;
}

function parseMs(
  text: string | undefined,
  what: string,
  fallback: number,
  problems: string[],
): number | null {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === null) {
    problems.push(
      `${what} ${JSON.stringify(text)} is not a duration: give a number with a unit, e.g. 500ms, 10s, 1m`,
    );
  }
  return ms;
}

function parseMethod(text: string | undefined, fallback: string, problems: string[]): string {
  if (text === undefined) return fallback;
  const method = text.trim().toUpperCase();
  if (method === 'HEAD') {
    problems.push(
      '--method HEAD is not supported: the load generator would wait for a body that never comes',
    );
    return fallback;
  }
  if (!(AUTOCANNON_METHODS as readonly string[]).includes(method)) {
    problems.push(`--method ${JSON.stringify(text)} is not one of ${AUTOCANNON_METHODS.join(', ')}`);
    return fallback;
  }
  return method;
}

function parseHeaders(lines: readonly string[], problems: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  /** Lower-cased name to the name as first given, so repeats join whatever their case. */
  const seen = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    const value = colon < 0 ? '' : line.slice(colon + 1).trim();
    if (colon < 0 || !TOKEN_RE.test(name)) {
      problems.push(`-H/--header ${JSON.stringify(line)} is not "Name: value"`);
      continue;
    }
    if (/[\r\n\0]/.test(value)) {
      problems.push(`-H/--header ${JSON.stringify(line)}: a value cannot hold CR, LF or NUL`);
      continue;
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) {
      problems.push(`-H/--header ${JSON.stringify(line)}: ${name} is set from --body; remove it`);
      continue;
    }
    const first = seen.get(lower);
    if (first === undefined) {
      seen.set(lower, name);
      headers[name] = value;
    } else {
      // RFC 9110 section 5.3: repeated field lines combine into one, comma-separated.
      headers[first] = `${headers[first]}, ${value}`;
    }
  }
  return headers;
}
