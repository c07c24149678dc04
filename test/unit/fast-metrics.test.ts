import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { FastCounter, FastHistogram } from '../../src/observability/fast-metrics.js';

/** What a scrape shows, from prom-client's own text format. */
async function scrape(build: (registry: client.Registry) => void): Promise<string> {
  const registry = new client.Registry();
  build(registry);
  return registry.metrics();
}

describe('fast metrics export exactly what prom-client exports for the same data', () => {
  const values = [0.0004, 0.001, 0.003, 0.2, 0.2, 7, 120, 0.05];

  it('histograms: buckets, +Inf, sum and count per label set', async () => {
    const options = {
      name: 'h_seconds',
      help: 'h',
      labelNames: ['server', 'route'],
      buckets: [0.001, 0.01, 0.1, 1, 10],
    };
    const ours = await scrape((registry) => {
      const h = new FastHistogram({ ...options, registers: [registry] });
      for (const [i, v] of values.entries()) h.child('web', i % 2 ? 'api' : 'static').observe(v);
    });
    const theirs = await scrape((registry) => {
      const h = new client.Histogram({ ...options, registers: [registry] });
      for (const [i, v] of values.entries()) h.labels('web', i % 2 ? 'api' : 'static').observe(v);
    });
    // prom-client lists label sets in first-seen order: static (i = 0) first, as ours does.
    expect(ours).toBe(theirs);
    const a = new client.Registry();
    const fast = new FastHistogram({ ...options, registers: [a] });
    const b = new client.Registry();
    const slow = new client.Histogram({ ...options, registers: [b] });
    for (const v of values) {
      fast.child('web', 'api').observe(v);
      slow.labels('web', 'api').observe(v);
    }
    expect(await a.getMetricsAsJSON()).toEqual(await b.getMetricsAsJSON());
  });

  it('counters, and the JSON the workers send to the primary', async () => {
    const options = { name: 'c_total', help: 'c', labelNames: ['code'] };
    const registryA = new client.Registry();
    const c = new FastCounter({ ...options, registers: [registryA] });
    c.child('200').inc();
    c.child('200').inc(2);
    c.child('502').inc();
    const registryB = new client.Registry();
    const p = new client.Counter({ ...options, registers: [registryB] });
    p.labels('200').inc(3);
    p.labels('502').inc();
    expect(await registryA.metrics()).toBe(await registryB.metrics());
    expect(await registryA.getMetricsAsJSON()).toEqual(await registryB.getMetricsAsJSON());
    registryA.resetMetrics();
    expect(c.child('200').value).toBe(0);
  });
});
