/**
 * Problems found by the pipeline stages, located by key path only; `load.ts` maps each path to a
 * line and column through a `SourceLocator`, so the stages stay independent of YAML.
 */
import type { ErrorCode } from '../errors/catalogue.js';
import { isPrefixPath, type KeyPath } from './key-path.js';

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
  readonly #rejected: { readonly path: KeyPath; readonly stage: number }[] = [];
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
    if (this.#rejected.some((r) => isPrefixPath(r.path, path))) return;
    this.#problems.push(problem(path, code, message, options));
  }

  /**
   * Reports a shape problem (environment or schema stage) and marks its node as rejected. Skipped
   * when an earlier stage rejected the node or an ancestor: an unset variable left `${PORT}` in
   * place, so the schema's "expected a number" there would say the same thing twice.
   */
  reject(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions = {}): void {
    const rejects = options.rejects ?? path;
    if (this.#rejected.some((r) => r.stage < this.#stage && isPrefixPath(r.path, rejects))) return;
    this.#problems.push(problem(path, code, message, options));
    this.#rejected.push({ path: rejects, stage: this.#stage });
  }

  /** Ends a stage: nodes rejected so far silence `reject` at and below them from now on. */
  endStage(): void {
    this.#stage++;
  }

  /** Reports a warning: not a reason to refuse the config. */
  warn(path: KeyPath, code: ErrorCode, message: string, options: ReportOptions = {}): void {
    if (this.#rejected.some((r) => isPrefixPath(r.path, path))) return;
    this.#warnings.push(problem(path, code, message, options));
  }

  /** Whether an earlier stage rejected `path`, one of its ancestors or one of its descendants. */
  isNearRejected(path: KeyPath): boolean {
    return this.#rejected.some((r) => isPrefixPath(r.path, path) || isPrefixPath(path, r.path));
  }
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
