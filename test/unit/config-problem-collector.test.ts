import { describe, expect, it } from 'vitest';
import type { KeyPath } from '../../src/config/key-path.js';
import { ProblemCollector } from '../../src/config/problem-collector.js';

const paths = (c: ProblemCollector) => c.problems.map((p) => p.path.join('.'));

describe('ProblemCollector', () => {
  it('drops meaning problems and warnings at or below a rejected node, not beside it', () => {
    const c = new ProblemCollector();
    c.reject(['servers', 0, 'listen'], 'SLUICE_E_CONFIG_TYPE', 'shape');
    c.endStage();
    c.error(['servers', 0, 'listen'], 'SLUICE_E_CONFIG_LISTEN', 'at');
    c.error(['servers', 0, 'listen', 1], 'SLUICE_E_CONFIG_LISTEN', 'below');
    c.error(['servers', 0, 'listen_x'], 'SLUICE_E_CONFIG_LISTEN', 'beside');
    c.error(['servers', 0], 'SLUICE_E_CONFIG_VALUE', 'above');
    c.warn(['servers', 0, 'listen', 0], 'SLUICE_E_CONFIG_VALUE', 'warning below');
    expect(paths(c)).toEqual(['servers.0.listen', 'servers.0.listen_x', 'servers.0']);
    expect(c.warnings).toEqual([]);
  });

  it('lets a stage reject beside its own rejections, and silences later stages below them', () => {
    const c = new ProblemCollector();
    c.reject(['a'], 'SLUICE_E_CONFIG_ENV', 'env');
    c.reject(['a', 'b'], 'SLUICE_E_CONFIG_ENV', 'same stage, below');
    c.endStage();
    c.reject(['a', 'c'], 'SLUICE_E_CONFIG_TYPE', 'later stage, below');
    c.reject(['d'], 'SLUICE_E_CONFIG_TYPE', 'later stage, elsewhere');
    expect(paths(c)).toEqual(['a', 'a.b', 'd']);
  });

  it('marks `rejects` rather than the reported node when given', () => {
    const c = new ProblemCollector();
    c.reject(['servers', 0], 'SLUICE_E_CONFIG_MISSING_KEY', 'missing', { rejects: ['servers', 0, 'routes'] });
    c.endStage();
    c.error(['servers', 0, 'listen'], 'SLUICE_E_CONFIG_LISTEN', 'still reported');
    c.error(['servers', 0, 'routes'], 'SLUICE_E_CONFIG_VALUE', 'dropped');
    expect(paths(c)).toEqual(['servers.0', 'servers.0.listen']);
  });

  it('tells a list index from a key spelt the same', () => {
    const c = new ProblemCollector();
    c.reject(['upstreams', '0'], 'SLUICE_E_CONFIG_TYPE', 'the upstream named "0"');
    c.endStage();
    c.error(['servers', 0], 'SLUICE_E_CONFIG_VALUE', 'kept');
    c.error(['upstreams', 0], 'SLUICE_E_CONFIG_VALUE', 'kept: an index, not the key "0"');
    c.error(['upstreams', '0', 'targets'], 'SLUICE_E_CONFIG_VALUE', 'dropped');
    expect(c.problems.map((p) => p.message)).toEqual([
      'the upstream named "0"',
      'kept',
      'kept: an index, not the key "0"',
    ]);
  });

  it('isNearRejected: the node, an ancestor or a descendant was rejected', () => {
    const c = new ProblemCollector();
    c.reject(['servers', 0, 'routes', 1, 'proxy', 'timeouts'], 'SLUICE_E_CONFIG_TYPE', 'shape');
    const near = (p: KeyPath) => c.isNearRejected(p);
    expect(near(['servers', 0, 'routes', 1, 'proxy'])).toBe(true);
    expect(near(['servers', 0, 'routes', 1, 'proxy', 'timeouts', 'read'])).toBe(true);
    expect(near(['servers', 0, 'routes', 1, 'proxy', 'timeouts'])).toBe(true);
    expect(near(['servers', 0, 'routes', 1, 'respond'])).toBe(false);
    expect(near(['servers', 0, 'routes', 2, 'proxy'])).toBe(false);
  });

  // Each question scanned every rejection: 10,000 routes with 2 problems each took 20 s to check.
  it('answers in time independent of the number of rejections (10,000 rejected routes)', () => {
    const c = new ProblemCollector();
    const routes = 10_000;
    const started = performance.now();
    for (let i = 0; i < routes; i++) {
      c.reject(['servers', 0, 'routes', i, 'respond', 'status'], 'SLUICE_E_CONFIG_VALUE', 'too big');
      c.reject(['servers', 0, 'routes', i, 'respond', 'bdy'], 'SLUICE_E_CONFIG_UNKNOWN_KEY', 'unknown');
    }
    c.endStage();
    let near = 0;
    for (let i = 0; i < routes; i++) {
      if (c.isNearRejected(['servers', 0, 'routes', i, 'proxy'])) near++;
      c.error(['servers', 0, 'routes', i, 'respond'], 'SLUICE_E_CONFIG_VALUE', 'meaning');
    }
    const ms = performance.now() - started;
    expect(near).toBe(0);
    expect(c.problems).toHaveLength(3 * routes);
    // About 0.3 s here; with every rejection scanned per question, 34 s.
    expect(ms).toBeLessThan(5000);
  });
});
