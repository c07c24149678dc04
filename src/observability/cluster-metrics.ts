/**
 * One scrape for the whole node: the primary's own metrics plus every worker's, summed by
 * prom-client's aggregator (each metric carries how it sums: counters add, `first`/`max` for the
 * ones that must not). Counters must never go down, even when a worker dies or is rolled away on
 * reload: the last snapshot of a gone worker's counters and histograms stays in the sum.
 */
import client from 'prom-client';
import type { MetricsJson } from '../admin/dashboard-stats.js';

type Metric = MetricsJson[number];

/** The workers' last snapshots, and what gone workers left behind. */
export class ClusterMetrics {
  readonly #live = new Map<number, MetricsJson>();
  /** The counters and histograms of workers that are gone, already summed. */
  #gone: MetricsJson = [];

  /** Stores a worker's latest snapshot. */
  update(pid: number, metrics: MetricsJson): void {
    this.#live.set(pid, metrics);
  }

  /** A worker is gone: its counters and histograms stay, its gauges go. */
  retire(pid: number): void {
    const last = this.#live.get(pid);
    this.#live.delete(pid);
    if (last === undefined) return;
    const monotonic = last.filter((m) => m.type === 'counter' || m.type === 'histogram');
    this.#gone = toJson(client.AggregatorRegistry.aggregate([this.#gone, monotonic] as never));
  }

  /** The summed registry of the primary's own metrics, the live workers' and the gone ones'. */
  aggregate(primary: MetricsJson): client.Registry {
    const own = primary.filter((m) => PRIMARY_ONLY.has(m.name));
    const summed: client.Registry = client.AggregatorRegistry.aggregate(
      [primary, ...this.#live.values(), this.#gone].map((list) =>
        list.filter((m) => !PRIMARY_ONLY.has(m.name)),
      ) as never,
    );
    for (const m of own) {
      const help = (m as { readonly help?: string }).help ?? m.name;
      const gauge = new client.Gauge({ name: m.name, help, registers: [summed] });
      const value = m.values[0]?.value;
      if (typeof value === 'number') gauge.set(value);
    }
    return summed;
  }
}

/**
 * Facts of one process that no sum or maximum makes a node's: the node's are the primary's, the
 * process a supervisor starts and restarts. prom-client's aggregator left out the start time
 * (`time() - process_start_time_seconds`, the usual uptime query, had nothing) and added up the
 * open-file limits of every process.
 */
const PRIMARY_ONLY = new Set(['process_start_time_seconds', 'process_max_fds']);

/** A registry's metrics as JSON, synchronously (aggregated registries hold plain values). */
function toJson(registry: client.Registry): MetricsJson {
  return registry.getMetricsAsArray().map((m) => (m as unknown as { get(): Metric }).get());
}
