import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { dashboardStats, type MetricsJson } from '../../src/admin/dashboard-stats.js';
import { ClusterMetrics } from '../../src/observability/cluster-metrics.js';
import { DataPlaneMetrics, methodLabel, newRegistry } from '../../src/observability/metrics.js';
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
} from '../../src/observability/trace-context.js';

describe('W3C trace context', () => {
  it('parses a valid traceparent', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      parentId: '00f067aa0ba902b7',
      flags: '01',
    });
  });

  it.each([
    'garbage',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
  ])('refuses %j (a new trace starts)', (v) => expect(parseTraceparent(v)).toBeNull());

  it('accepts a future version with extra fields', () => {
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')?.traceId).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
  });

  it('makes distinct well-formed ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newTraceId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(newSpanId()).toMatch(/^[0-9a-f]{16}$/);
    expect(formatTraceparent('a'.repeat(32), 'b'.repeat(16), '01')).toBe(
      `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    );
  });
});

describe('metrics', () => {
  it('keeps method labels bounded', () => {
    expect(methodLabel('GET')).toBe('GET');
    expect(methodLabel('FROBNICATE')).toBe('OTHER');
    // An answer given before there was a request: `-`, as its access line says.
    expect(methodLabel('-')).toBe('-');
  });

  it('records requests and attempts with cached label children', async () => {
    const registry = newRegistry();
    const m = new DataPlaneMetrics(registry, () => 3);
    const route = {};
    for (let i = 0; i < 3; i++) m.request(route, 'web', 'api', 'GET', 200, 0.01);
    m.request(route, 'web', 'api', 'BREW', 418, 0.01);
    const target = {};
    m.attempt(target, 'app', 'http://a:1', 502, 0.2);
    m.attempt(target, 'app', 'http://a:1', 'timeout', 5);
    m.retry('app');
    const text = await registry.metrics();
    expect(text).toContain('sluice_http_requests_total{server="web",route="api",method="GET",code="200"} 3');
    expect(text).toContain(
      'sluice_http_requests_total{server="web",route="api",method="OTHER",code="418"} 1',
    );
    expect(text).toContain('sluice_http_request_duration_seconds_count{server="web",route="api"} 4');
    expect(text).toContain(
      'sluice_upstream_requests_total{upstream="app",target="http://a:1",code="timeout"} 1',
    );
    expect(text).toContain('sluice_upstream_retries_total{upstream="app"} 1');
    expect(text).toContain('sluice_http_connections_active 3');
    expect(text).not.toContain('nodejs_active_handles_total');
    expect(text).toContain('nodejs_active_handles ');
  });

  it('counts dropped log lines from the running total at each scrape', async () => {
    const registry = newRegistry();
    let dropped = 0;
    new DataPlaneMetrics(
      registry,
      () => 0,
      () => dropped,
    );
    expect(await registry.metrics()).toContain('sluice_log_lines_dropped_total 0');
    dropped = 7;
    expect(await registry.metrics()).toContain('sluice_log_lines_dropped_total 7');
    dropped = 9;
    expect(await registry.metrics()).toContain('sluice_log_lines_dropped_total 9');
  });

  it('sums workers, and keeps a gone worker counters but not its gauges', async () => {
    const snapshot = async (n: number, conns: number) => {
      const r = new client.Registry();
      new client.Counter({ name: 'c_total', help: 'c', registers: [r] }).inc(n);
      new client.Gauge({ name: 'g', help: 'g', registers: [r] }).set(conns);
      return (await r.getMetricsAsJSON()) as unknown as MetricsJson;
    };
    const cluster = new ClusterMetrics();
    cluster.update(1, await snapshot(10, 2));
    cluster.update(2, await snapshot(5, 3));
    expect(await cluster.aggregate([]).metrics()).toMatch(/c_total 15[\s\S]*g 5/);
    cluster.retire(1);
    cluster.update(3, await snapshot(1, 1));
    const text = await cluster.aggregate([]).metrics();
    expect(text).toContain('c_total 16');
    expect(text).toContain('g 4');
  });

  // prom-client's aggregator left the start time out (no uptime query worked) and summed the
  // open-file limits of every process (60000 for three processes of 20000).
  it("takes the node's start time and open-file limit from the primary", async () => {
    const facts = (start: number, fds: number) =>
      [
        {
          name: 'process_start_time_seconds',
          help: 'Start time.',
          type: 'gauge',
          aggregator: 'omit',
          values: [{ value: start, labels: {} }],
        },
        {
          name: 'process_max_fds',
          help: 'Max fds.',
          type: 'gauge',
          aggregator: 'sum',
          values: [{ value: fds, labels: {} }],
        },
      ] as unknown as MetricsJson;
    const cluster = new ClusterMetrics();
    cluster.update(1, facts(222, 30_000));
    cluster.update(2, facts(333, 40_000));
    const text = await cluster.aggregate(facts(111, 20_000)).metrics();
    expect(text).toContain('# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 111\n');
    expect(text).toContain('process_max_fds 20000\n');
  });

  it('derives dashboard totals: requests, classes and merged latency buckets', async () => {
    const registry = newRegistry();
    const m = new DataPlaneMetrics(registry, () => 7);
    m.request({}, 'web', 'a', 'GET', 200, 0.002);
    m.request({}, 'web', 'b', 'GET', 503, 0.2);
    m.request({}, 'web', 'b', 'GET', 404, 0.2);
    const stats = dashboardStats((await registry.getMetricsAsJSON()) as unknown as MetricsJson, {
      version: 'x',
    });
    expect(stats.requests).toBe(3);
    expect(stats.classes).toMatchObject({ '2xx': 1, '4xx': 1, '5xx': 1 });
    expect(stats.connections).toBe(7);
    expect(stats.latency.find(([le]) => le === 0.0025)?.[1]).toBe(1);
    expect(stats.latency.at(-1)).toEqual([-1, 3]);
  });
});
