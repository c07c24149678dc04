/**
 * The upstreams of a config: those under `upstreams:`, and one implicit upstream per distinct
 * `proxy.url` origin, named by that origin (`http://127.0.0.1:9001`), so every proxy route
 * resolves to a named upstream and shares its connection pool with the others using it.
 */
import { didYouMean } from '../core/did-you-mean.js';
import { nameList } from '../core/name-list.js';
import type { ConfigDir } from './config-dir.js';
import type { UpstreamDraft } from './config-draft.js';
import { isMapping, type KeyPath } from './key-path.js';
import { implicitUpstream, normaliseUpstream } from './normalise-upstream.js';
import type { ProblemCollector } from './problem-collector.js';
import type { ResolvedUpstream } from './types.js';
import type { UpstreamUrl } from './upstream-url.js';

/** Explicit and implicit upstreams, and the checks of references to them. */
export class UpstreamRegistry {
  readonly #explicit = new Map<string, ResolvedUpstream>();
  readonly #implicit = new Map<string, ResolvedUpstream>();
  /** Names declared under `upstreams:`, even ones whose body is malformed; null: unknown. */
  readonly #declared: ReadonlySet<string> | null;
  readonly #problems: ProblemCollector;

  constructor(
    drafts: Readonly<Record<string, UpstreamDraft | undefined>> | undefined,
    declared: ReadonlySet<string> | null,
    problems: ProblemCollector,
    baseDir: ConfigDir,
  ) {
    this.#declared = declared;
    this.#problems = problems;
    if (!isMapping(drafts)) return;
    for (const [name, draft] of Object.entries(drafts)) {
      if (draft === undefined) continue;
      this.#explicit.set(name, normaliseUpstream(name, draft, ['upstreams', name], problems, baseDir));
    }
  }

  /** Checks a `proxy.upstream` reference; the name, or `undefined` when it names nothing. */
  reference(name: string, path: KeyPath): string | undefined {
    if (this.#explicit.has(name)) return name;
    // Declared but malformed: its own problems are reported already; the name is not unknown.
    if (this.#declared === null || this.#declared.has(name)) return undefined;
    const names = [...this.#declared];
    const guess = didYouMean(name, names);
    const message =
      names.length === 0
        ? `unknown upstream ${JSON.stringify(name)}; no upstreams are defined`
        : `unknown upstream ${JSON.stringify(name)}${guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`}`;
    this.#problems.error(path, 'SLUICE_E_CONFIG_UNKNOWN_UPSTREAM', message, {
      hint:
        names.length === 0
          ? 'define it under upstreams:, or use proxy.url for a single target'
          : `defined upstreams: ${nameList(names, name)}; or use proxy.url for a single target`,
    });
    return undefined;
  }

  /** The implicit upstream for a `proxy.url`; its name is the URL's origin. */
  implicit(url: UpstreamUrl, path: KeyPath): string | undefined {
    const name = url.origin;
    if (this.#explicit.has(name) || this.#declared?.has(name)) {
      this.#problems.error(
        path,
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `this url's implicit upstream ${JSON.stringify(name)} has the name of an upstream under upstreams:`,
        {
          hint: `rename that upstream, or write proxy.upstream: ${JSON.stringify(name)} instead of url`,
        },
      );
      return undefined;
    }
    if (!this.#implicit.has(name)) {
      this.#implicit.set(name, implicitUpstream(name, url.origin));
    }
    return name;
  }

  /** Every upstream by name: the explicit ones in written order, then the implicit ones. */
  toRecord(): Record<string, ResolvedUpstream> {
    return Object.fromEntries([...this.#explicit, ...this.#implicit]);
  }
}
