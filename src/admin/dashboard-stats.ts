/**
 * The dashboard's data (`GET /api/stats`): running totals derived from the summed metrics plus
 * the status document. The page turns totals into rates and quantiles itself, from the change
 * between two reads, so the server keeps no per-viewer state.
 */

/** prom-client's JSON form of a registry (as `getMetricsAsJSON()` returns and the aggregator sums). */
export type MetricsJson = readonly {
  readonly name: string;
  readonly type: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Record<string, string | number>>;
    readonly metricName?: string;
  }[];
}[];

/** Totals for the dashboard. */
export interface DashboardStats {
  readonly time: number;
  readonly requests: number;
  readonly classes: Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  /** Cumulative request-duration buckets across every route: [upper bound in seconds, count]. */
  readonly latency: readonly (readonly [number, number])[];
  readonly connections: number;
  readonly retries: number;
  readonly status: Record<string, unknown>;
}

/** Derives the dashboard totals. */
export function dashboardStats(metrics: MetricsJson, status: Record<string, unknown>): DashboardStats {
  const classes = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  let requests = 0;
  const buckets = new Map<number, number>();
  let connections = 0;
  let retries = 0;
  for (const m of metrics) {
    switch (m.name) {
      case 'sluice_http_requests_total':
        for (const v of m.values) {
          requests += v.value;
          const cls = `${String(v.labels.code ?? '0')[0]}xx` as keyof typeof classes;
          if (cls in classes) classes[cls] += v.value;
        }
        break;
      case 'sluice_http_request_duration_seconds':
        for (const v of m.values) {
          if (v.metricName !== 'sluice_http_request_duration_seconds_bucket') continue;
          const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
          buckets.set(le, (buckets.get(le) ?? 0) + v.value);
        }
        break;
      case 'sluice_http_connections_active':
        for (const v of m.values) connections += v.value;
        break;
      case 'sluice_upstream_retries_total':
        for (const v of m.values) retries += v.value;
        break;
    }
  }
  const latency = [...buckets]
    .sort((a, b) => a[0] - b[0])
    .map(([le, n]) => [Number.isFinite(le) ? le : -1, n] as const);
  return { time: Date.now(), requests, classes, latency, connections, retries, status };
}
