/**
 * The metrics of the Redis connection behind `state.redis`, for operators to alert on:
 * `sluice_shared_state_failures_total{reason}` (commands that timed out, got an error reply, or found
 * no connection) and `sluice_shared_state_up` (1 or 0). The gauge is registered only while a Redis
 * is configured: a node without one has no such series, so an alert on `== 0` never fires there.
 * Workers count their failures too (summed over the node); the gauge is the control plane's alone,
 * since the node's metrics sum gauges over processes, and says 0 when the control plane's connection
 * is down or any worker serves on local state (the primary asks them at each scrape).
 */
import client, { type Counter, type Gauge, type Registry } from 'prom-client';
import type { FailureReason } from '../security/shared-state.js';

const REASONS: readonly FailureReason[] = ['timeout', 'error', 'connection'];

/** Failures of one process, and (for the control plane) whether Redis is up. */
export class SharedStateMetrics {
  readonly #registry: Registry;
  readonly failures: Counter<'reason'>;
  readonly #up: Gauge;

  /** `health`: what to report, 'off' when no Redis is configured. */
  constructor(registry: Registry, health: () => 'up' | 'down' | 'off') {
    this.#registry = registry;
    this.failures = new client.Counter({
      name: 'sluice_shared_state_failures_total',
      help: 'Redis (state.redis) commands that failed, by reason: timeout, error (an error reply) or connection.',
      labelNames: ['reason'],
      registers: [registry],
    });
    for (const reason of REASONS) this.failures.labels(reason).inc(0);
    this.#up = new client.Gauge({
      name: 'sluice_shared_state_up',
      help: 'Whether Redis (state.redis) is up for this node (1) or not (0); absent without state.redis.',
      registers: [],
      collect() {
        this.set(health() === 'up' ? 1 : 0);
      },
    });
  }

  /** Counts a failed command. */
  failure(reason: FailureReason): void {
    this.failures.labels(reason).inc();
  }

  /** Shows `sluice_shared_state_up` when Redis is configured, hides it when not. */
  showUp(configured: boolean): void {
    const shown = this.#registry.getSingleMetric('sluice_shared_state_up') !== undefined;
    if (configured && !shown) this.#registry.registerMetric(this.#up);
    else if (!configured && shown) this.#registry.removeSingleMetric('sluice_shared_state_up');
  }
}
