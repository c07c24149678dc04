/**
 * Problems found by the pipeline stages, located by key path only; `load.ts` maps each path to a
 * line and column through a `SourceLocator`, so the stages stay independent of YAML.
 */
import type { ErrorCode } from '../errors/catalogue.js';
import type { KeyPath } from './key-path.js';

/** A problem at a key path, before it is given a file position. */
export interface PathProblem {
  /** The node the problem is about. */
  readonly path: KeyPath;
  /**
   * Point at the value (the default) or at the key that names it (unknown keys, header names).
   * With `key`, the message is prefixed with the parent's path, since the key itself is quoted.
   */
  readonly at: 'value' | 'key';
  readonly code: ErrorCode;
  /** Without the key path; `load.ts` prefixes it. */
  readonly message: string;
  /** Overrides the catalogue's hint when a more specific one helps. */
  readonly hint?: string;
}

/** Options of one reported problem. */
export interface ReportOptions {
  readonly at?: 'value' | 'key';
  readonly hint?: string;
  /** The node `reject` marks as rejected when it is not `path` itself (a missing key's own path). */
  readonly rejects?: KeyPath;
}

/**
 * Collects problems and warnings from every stage. A meaning problem at or below a node that an
 * earlier stage rejected is dropped: the malformed value would only produce follow-on noise (an
 * unset ${VAR} left in a URL). Checks that count children (a route's actions) ask
 * `isNearRejected` first, since a child dropped as malformed would make the count wrong.
 */
export class ProblemCollector {
  readonly #problems: PathProblem[] = [];
  readonly #warnings: PathProblem[] = [];
  /**
   * The key of each rejected node → the first stage that rejected it. Indexed, so a question costs
   * one look-up per level of the path asked about, not one comparison per rejected node: a file
   * with 10,000 bad routes took 20 s to check when each route and action scanned every rejection.
   */
  readonly #rejectedAt = new Map<string, number>();
  /** The keys of every rejected node and of all its ancestors. */
  readonly #aboveRejected = new Set<string>();
  #stage = 0;

  /** Every problem reported and not dropped, in the order reported. */
  get problems(): readonly PathProblem[] {
    return this.#problems;
  }

  /** Every warning reported, in the order reported. */
  get warnings(): readonly PathProblem[] {
    return this.#warnings;
  }

  /** Reports a meaning problem, unless an earlier stage rejected the node or an ancestor. */
  error(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions = {}): void {
    if (this.#rejectedAtOrAbove(path, Number.POSITIVE_INFINITY)) return;
    this.#problems.push(problem(path, code, message, options));
  }

  /**
   * Reports a shape problem (environment or schema stage) and marks its node as rejected. Skipped
   * when an earlier stage rejected the node or an ancestor: an unset variable left `${PORT}` in
   * place, so the schema's "expected a number" there would say the same thing twice.
   */
  reject(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions = {}): void {
    const rejects = options.rejects ?? path;
    if (this.#rejectedAtOrAbove(rejects, this.#stage)) return;
    this.#problems.push(problem(path, code, message, options));
    const keys = prefixKeys(rejects);
    const own = keys[keys.length - 1]!;
    if (!this.#rejectedAt.has(own)) this.#rejectedAt.set(own, this.#stage);
    for (const key of keys) this.#aboveRejected.add(key);
  }

  /** Ends a stage: nodes rejected so far silence `reject` at and below them from now on. */
  endStage(): void {
    this.#stage++;
  }

  /** Reports a warning: not a reason to refuse the config. */
  warn(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions = {}): void {
    if (this.#rejectedAtOrAbove(path, Number.POSITIVE_INFINITY)) return;
    this.#warnings.push(problem(path, code, message, options));
  }

  /** Whether an earlier stage rejected `path`, one of its ancestors or one of its descendants. */
  isNearRejected(path: KeyPath): boolean {
    if (this.#rejectedAtOrAbove(path, Number.POSITIVE_INFINITY)) return true;
    return this.#aboveRejected.has(path.map(segmentKey).join(''));
  }

  /** Whether `path` or an ancestor was rejected by a stage before `stage`. O(depth). */
  #rejectedAtOrAbove(path: KeyPath, stage: number): boolean {
    if (this.#rejectedAt.size === 0) return false;
    let key = '';
    for (let i = 0; ; i++) {
      const at = this.#rejectedAt.get(key);
      if (at !== undefined && at < stage) return true;
      if (i === path.length) return false;
      key += segmentKey(path[i]!);
    }
  }
}

/**
 * The index keys of `path` and of each of its ancestors, the root's (`''`) first. Indices and
 * keys are spelt apart (`[0]` and `"0"`): a list's first entry is not a mapping's key "0".
 */
function prefixKeys(path: KeyPath): string[] {
  const keys = [''];
  let key = '';
  for (const seg of path) {
    key += segmentKey(seg);
    keys.push(key);
  }
  return keys;
}

function segmentKey(seg: string | number): string {
  return typeof seg === 'number' ? `[${seg}]` : JSON.stringify(seg);
}

function problem(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions): PathProblem {
  return {
    path,
    at: options.at ?? 'value',
    code,
    message,
    ...(options.hint === undefined ? {} : { hint: options.hint }),
  };
}
