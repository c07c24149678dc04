/**
 * One upstream at run time: its targets split into primaries and backups, a balancer over each,
 * and the rules that decide which targets may take a request (BEHAVIOUR.md sections 1 and 4):
 *
 * - a target is skipped when it is `down`, draining, marked down by an active health check,
 *   resting after `max_fails` failures (see health/passive-health.ts), or at `max_conns`;
 * - a target not yet passed by its first health checks (`unknown`) gets traffic only while no
 *   target of the upstream is known to be up;
 * - backups are used only when no primary can take the request;
 * - an upstream with a single target (and no backup) never marks it failed, as nginx.
 */
import type { Balancer, PickContext } from '../balancer/balancer.js';
import { resetWeights } from '../balancer/balancer.js';
import { createBalancer } from '../balancer/create-balancer.js';
import { parseTemplate } from '../config/template.js';
import type { ResolvedTarget, ResolvedUpstream } from '../config/types.js';
import {
  clearFailures,
  type FailPolicy,
  isFailed,
  onFailure,
  onPicked,
  onSuccess,
} from '../health/passive-health.js';
import { type TargetSpec, UpstreamTarget } from './upstream-target.js';
import { upstreamTlsKey } from './upstream-tls.js';
import { compileTemplate, type Template } from './variables.js';

/** A target's state as shown on the status page and the admin API. */
export type TargetState = 'up' | 'down' | 'draining' | 'failed' | 'backup';

/** The per-request side of a pick: which targets this request may use, and its hash key. */
export interface UpstreamPick extends PickContext<UpstreamTarget> {
  /** The time of this pick, ms. */
  readonly now: number;
}

/**
 * The previous generation's target for a spec when it can serve on as it is (same URL and
 * settings, warm connections); undefined when a new target is needed.
 */
export type TargetReuse = (spec: TargetSpec) => UpstreamTarget | undefined;

interface Entry {
  readonly config: ResolvedTarget;
  targets: UpstreamTarget[];
}

const noReuse: TargetReuse = () => undefined;

/** An upstream: targets, balancers and the health rules. */
export class Upstream {
  readonly name: string;
  readonly config: ResolvedUpstream;
  /** Compiled `hash_key` (balance: hash). */
  readonly hashKey: Template | null;
  /** `keepalive: 0` asks for a fresh connection per request. */
  readonly reuseConnections: boolean;
  readonly #policy: FailPolicy;
  readonly #tlsKey: string;
  readonly #entries: Entry[];
  #all: UpstreamTarget[] = [];
  #primary: Balancer<UpstreamTarget> | null = null;
  #backup: Balancer<UpstreamTarget> | null = null;
  #single = false;
  #anyUp = true;
  #triable = 0;
  /**
   * The URLs an operator drained. A drain belongs to the URL, not to a target object: a target that
   * DNS gives at a drained URL (an address also listed on its own, or one it had dropped) drains too.
   */
  readonly #drained = new Set<string>();

  constructor(config: ResolvedUpstream, reuse: TargetReuse) {
    this.name = config.name;
    this.config = config;
    this.reuseConnections = config.keepalive > 0;
    this.#policy = { maxFails: config.maxFails, failTimeoutMs: config.failTimeoutMs };
    this.#tlsKey = upstreamTlsKey(config.tls);
    const parsed = config.hashKey === null ? null : parseTemplate(config.hashKey);
    this.hashKey = parsed === null || 'error' in parsed ? null : compileTemplate(parsed.parts);
    // Targets with `resolve: true` start empty and are filled in by the DNS refresher.
    this.#entries = config.targets.map((t) => ({
      config: t,
      targets: t.resolve ? [] : [this.#target(this.spec(t, t.origin), reuse)],
    }));
    this.#rebuild();
  }

  /** The spec of a configured target, connecting to `origin` (its own, or a resolved address). */
  spec(t: ResolvedTarget, origin: string): TargetSpec {
    return {
      origin,
      hostPort: new URL(t.origin).host,
      weight: t.weight,
      backup: t.backup,
      down: t.down,
      maxConns: t.maxConns,
      keepaliveTimeoutMs: this.config.keepaliveTimeoutMs,
      keepalive: this.config.keepalive,
      tls: this.config.tls,
      tlsKey: this.#tlsKey,
    };
  }

  #target(spec: TargetSpec, reuse: TargetReuse): UpstreamTarget {
    return reuse(spec) ?? new UpstreamTarget(spec, this.config.healthCheck === null ? 'up' : 'unknown');
  }

  /**
   * Takes over what `previous` (this upstream in the generation being replaced) knows of each URL
   * it lists too: called right as this generation starts to serve, not when it was built, since a
   * reload waits for DNS and new listeners in between, and a drain, an enable or a check result
   * made meanwhile changed only the serving generation's targets. A target built anew for new
   * settings (weight, keepalive…) needs new pools, not a new server: the operator's drain, the
   * check result and the passive failures carry over, as for a target the reload kept, where they
   * still mean the same.
   */
  inherit(previous: Upstream): void {
    const carry = {
      // A result is one of a check that runs on: without a check there are none (a target the
      // removed check had marked down was never probed again, and never served again until a
      // restart), and a check just added has probed nothing yet (an unchecked `up` is no result).
      health: this.config.healthCheck !== null && previous.config.healthCheck !== null,
      // Failures count towards max_fails within fail_timeout: under other settings they do not
      // (one counted under max_fails 0 took the target out at once under max_fails 1).
      failures:
        this.#policy.maxFails === previous.#policy.maxFails &&
        this.#policy.failTimeoutMs === previous.#policy.failTimeoutMs,
    };
    const fresh = this.config.healthCheck === null ? 'up' : 'unknown';
    for (const t of this.#all) {
      const predecessor = previous.#all.includes(t) ? t : previous.#all.find((p) => p.origin === t.origin);
      if (predecessor !== undefined) t.takeOver(predecessor, carry, fresh);
    }
    // A drain holds while the upstream lists its URL; a URL the reload removed takes its drain along.
    for (const origin of previous.#drained) if (this.#lists(origin)) this.#drained.add(origin);
    this.#updateAnyUp();
  }

  /** Every target, in config order (resolved addresses in place of their entry). */
  get targets(): readonly UpstreamTarget[] {
    return this.#all;
  }

  /**
   * The targets not configured `down`, backups included: the most attempts a request makes
   * (nginx's `peer.tries`), whatever state they are in now.
   */
  get triable(): number {
    return this.#triable;
  }

  /** The configured targets with `resolve: true`, with their entry index. */
  resolveEntries(): { index: number; config: ResolvedTarget }[] {
    return this.#entries.flatMap((e, index) => (e.config.resolve ? [{ index, config: e.config }] : []));
  }

  /**
   * Replaces the addresses of a `resolve: true` entry; targets whose address stays keep their
   * state and connections. Returns the targets no longer used (to be closed by the caller).
   */
  setResolved(entryIndex: number, origins: readonly string[], reuse?: TargetReuse): UpstreamTarget[] {
    const entry = this.#entries[entryIndex];
    if (entry === undefined) return [];
    const old = new Map(entry.targets.map((t) => [t.origin, t]));
    entry.targets = origins.map((origin) => {
      const spec = this.spec(entry.config, origin);
      const kept = old.get(origin);
      old.delete(origin);
      return kept ?? this.#target(spec, reuse ?? noReuse);
    });
    this.#rebuild();
    return [...old.values()];
  }

  #rebuild(): void {
    this.#all = this.#entries.flatMap((e) => e.targets);
    const primaries = this.#all.filter((t) => !t.spec.backup);
    const backups = this.#all.filter((t) => t.spec.backup);
    this.#primary = primaries.length > 0 ? createBalancer(this.config.balance, primaries) : null;
    this.#backup = backups.length > 0 ? createBalancer(this.config.balance, backups) : null;
    this.#single = primaries.length === 1 && backups.length === 0;
    this.#triable = this.#all.filter((t) => !t.spec.down).length;
    this.#updateAnyUp();
  }

  #updateAnyUp(): void {
    this.#anyUp = this.#all.some((t) => t.health === 'up' && !t.spec.down);
  }

  /** The URLs an operator drained (see `drain`). */
  get drained(): ReadonlySet<string> {
    return this.#drained;
  }

  #lists(origin: string): boolean {
    return this.#all.some((t) => t.origin === origin);
  }

  /** Whether `t` may take a new request now (whatever this request already tried). */
  usable(t: UpstreamTarget, now: number): boolean {
    // Balancers ask this of every peer on every pick: no lookup at all while nothing is drained.
    if (t.spec.down || (this.#drained.size !== 0 && this.#drained.has(t.origin))) return false;
    if (t.health !== 'up' && (t.health === 'down' || this.#anyUp)) return false;
    if (t.spec.maxConns > 0 && t.conns >= t.spec.maxConns) return false;
    return this.#single || !isFailed(t, this.#policy, now);
  }

  /** Picks a target for the request: a primary, else a backup; null when none can take it. */
  pick(ctx: UpstreamPick): UpstreamTarget | null {
    const t = this.#primary?.pick(ctx) ?? this.#backup?.pick(ctx) ?? null;
    if (t !== null && !this.#single) onPicked(t, this.#policy, ctx.now);
    return t;
  }

  /** Counts a failed attempt (error, timeout, invalid header, or a listed status); true when it takes the target out. */
  failed(t: UpstreamTarget, now: number): boolean {
    return this.#single ? false : onFailure(t, this.#policy, now);
  }

  /** Counts a successful attempt. */
  succeeded(t: UpstreamTarget): void {
    if (!this.#single) onSuccess(t);
  }

  /**
   * Applies an active health check result. A target that comes back up forgets its passive
   * failures at once (Envoy: a passing check returns the host). Returns whether the state changed.
   */
  setHealth(origin: string, up: boolean): boolean {
    // Every target with that origin: a `resolve: true` name can expand to an address also listed
    // on its own, and the second one never got a health state (and so no traffic).
    let changed = false;
    for (const t of this.#all) {
      if (t.origin !== origin || t.health === (up ? 'up' : 'down')) continue;
      t.health = up ? 'up' : 'down';
      if (up) {
        clearFailures(t);
        resetWeights(t);
      }
      changed = true;
    }
    if (changed) this.#updateAnyUp();
    return changed;
  }

  /**
   * Stops sending new requests to the target at `origin` (requests in flight finish). A drain is
   * kept by URL, not by place in the list: another process, or the next config, may list the
   * targets in another order. Every target with that URL drains, now and as DNS gives it (a
   * `resolve: true` name may repeat a listed address: the same server). Returns the first target
   * at that URL, or null (and nothing is drained: a URL the upstream does not list, such as one a
   * reload removed before the primary told this process, has nothing to drain).
   */
  drain(origin: string): UpstreamTarget | null {
    const found = this.#all.find((t) => t.origin === origin) ?? null;
    if (found !== null) this.#drained.add(origin);
    return found;
  }

  /** Sends requests to the target at `origin` again, with its failures forgotten. */
  enable(origin: string): UpstreamTarget | null {
    this.#drained.delete(origin);
    const found = this.#all.filter((t) => t.origin === origin);
    for (const t of found) {
      clearFailures(t);
      resetWeights(t);
    }
    return found[0] ?? null;
  }

  /** The state of a target for status pages. */
  state(t: UpstreamTarget, now: number): TargetState {
    if (t.spec.down || t.health === 'down' || (t.health === 'unknown' && this.#anyUp)) return 'down';
    if (this.#drained.has(t.origin)) return 'draining';
    if (!this.#single && isFailed(t, this.#policy, now)) return 'failed';
    return t.spec.backup ? 'backup' : 'up';
  }

  /** The `/api/upstreams` view of this upstream. */
  describe(now: number): Record<string, unknown> {
    return {
      name: this.name,
      balance: this.config.balance,
      targets: this.#all.map((t, index) => ({
        index,
        target: t.origin,
        host: t.hostPort,
        weight: t.weight,
        state: this.state(t, now),
        health: t.health,
        inflight: t.conns,
        fails: t.fails,
        backup: t.spec.backup,
        // `down: true` in the config: out of service whatever its health, until a reload.
        down: t.spec.down,
      })),
    };
  }
}
