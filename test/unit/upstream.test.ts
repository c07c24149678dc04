import { describe, expect, it } from 'vitest';
import { implicitUpstream } from '../../src/config/normalise-upstream.js';
import type { ResolvedTarget, ResolvedUpstream } from '../../src/config/types.js';
import { Upstream, type UpstreamPick } from '../../src/proxy/upstream.js';
import type { UpstreamTarget } from '../../src/proxy/upstream-target.js';

const target = (host: string, extra: Partial<ResolvedTarget> = {}): ResolvedTarget => ({
  origin: `http://${host}:80`,
  weight: 1,
  backup: false,
  down: false,
  maxConns: 0,
  resolve: false,
  ...extra,
});

/** An active health check that decides on one result. */
const CHECK = {
  path: '/',
  intervalMs: 1000,
  timeoutMs: 500,
  rise: 1,
  fall: 1,
  expectStatus: [[200, 399]] as [number, number][],
  host: null,
};

const upstream = (targets: ResolvedTarget[], extra: Partial<ResolvedUpstream> = {}) =>
  new Upstream({ ...implicitUpstream('u', 'http://x:80'), targets, ...extra }, () => undefined);

const pick = (u: Upstream, now = 1000, tried: UpstreamTarget[] = []): string | null => {
  const ctx: UpstreamPick = { now, key: '', usable: (t) => u.usable(t, now) && !tried.includes(t) };
  return u.pick(ctx)?.origin.slice(7, -3) ?? null;
};

describe('Upstream', () => {
  it('uses backups only when no primary can take the request', () => {
    const u = upstream([target('a'), target('b'), target('c', { backup: true })]);
    expect([pick(u), pick(u), pick(u)]).toEqual(['a', 'b', 'a']);
    const [a, b] = u.targets;
    expect(pick(u, 1000, [a!, b!])).toBe('c');
    u.drain(a!.origin);
    expect(pick(u, 1000, [b!])).toBe('c');
  });

  it('skips down targets, draining targets and targets at max_conns', () => {
    const u = upstream([target('a', { down: true }), target('b', { maxConns: 1 }), target('c')]);
    const [, b, c] = u.targets;
    expect(pick(u)).toBe('b');
    b!.conns = 1;
    expect(pick(u)).toBe('c');
    u.drain(c!.origin);
    expect(pick(u)).toBeNull();
    u.enable(c!.origin);
    expect(pick(u)).toBe('c');
    expect(u.state(u.targets[0]!, 0)).toBe('down');
  });

  it('takes a failed target out for fail_timeout and answers null when all are out', () => {
    const u = upstream([target('a'), target('b')], { maxFails: 1, failTimeoutMs: 10_000 });
    const [a, b] = u.targets;
    expect(u.failed(a!, 1000)).toBe(true);
    expect(u.state(a!, 1000)).toBe('failed');
    expect([pick(u, 2000), pick(u, 3000)]).toEqual(['b', 'b']);
    u.failed(b!, 3000);
    expect(pick(u, 4000)).toBeNull();
    expect(pick(u, 11_001)).toBe('a');
  });

  it('never marks a single target failed (nginx single-server exemption)', () => {
    const u = upstream([target('only')]);
    for (let i = 0; i < 10; i++) expect(u.failed(u.targets[0]!, 1000 + i)).toBe(false);
    expect(pick(u, 1010)).toBe('only');
    expect(u.state(u.targets[0]!, 1010)).toBe('up');
  });

  it('keeps unknown targets (no health result yet) out while another target is up', () => {
    const u = upstream([target('a'), target('b')], { healthCheck: CHECK });
    expect(u.targets.map((t) => t.health)).toEqual(['unknown', 'unknown']);
    // Nothing is known to be up yet: everyone gets traffic.
    expect([pick(u), pick(u)].sort()).toEqual(['a', 'b']);
    u.setHealth('http://a:80', true);
    expect([pick(u), pick(u)]).toEqual(['a', 'a']);
    u.setHealth('http://b:80', true);
    u.setHealth('http://a:80', false);
    expect([pick(u), pick(u)]).toEqual(['b', 'b']);
    expect(u.state(u.targets[0]!, 0)).toBe('down');
  });

  it('gives a health result to every target with that origin (a resolved name may repeat a listed address)', () => {
    const u = upstream([target('a'), target('a'), target('b')], { healthCheck: CHECK });
    expect(u.setHealth('http://a:80', true)).toBe(true);
    expect(u.targets.map((t) => t.health)).toEqual(['up', 'up', 'unknown']);
    expect(u.setHealth('http://a:80', true)).toBe(false);
  });

  it('drains and enables by URL: every target with that origin, none for an unknown one', () => {
    const u = upstream([target('a'), target('b'), target('a')]);
    expect(u.drain('http://a:80')).toBe(u.targets[0]);
    expect(u.targets.map((t) => u.state(t, 0))).toEqual(['draining', 'up', 'draining']);
    expect([pick(u), pick(u)]).toEqual(['b', 'b']);
    expect(u.drain('http://gone:80')).toBeNull();
    expect(u.enable('http://a:80')).toBe(u.targets[0]);
    expect(u.targets.map((t) => u.state(t, 0))).toEqual(['up', 'up', 'up']);
  });

  it('forgets passive failures when a health check passes', () => {
    const u = upstream([target('a'), target('b')], { healthCheck: CHECK });
    u.setHealth('http://a:80', true);
    u.setHealth('http://b:80', true);
    const [a] = u.targets;
    u.failed(a!, 1000);
    expect(u.state(a!, 1000)).toBe('failed');
    u.setHealth('http://a:80', false);
    u.setHealth('http://a:80', true);
    expect(u.state(a!, 1000)).toBe('up');
  });

  it('keeps the state of resolved targets whose address stays', () => {
    const u = upstream([target('svc', { resolve: true }), target('static')]);
    expect(u.targets.map((t) => t.origin)).toEqual(['http://static:80']);
    u.setResolved(0, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    const first = u.targets[0]!;
    first.fails = 3;
    const retired = u.setResolved(0, ['http://10.0.0.1:80', 'http://10.0.0.3:80']);
    expect(u.targets.map((t) => t.origin)).toEqual([
      'http://10.0.0.1:80',
      'http://10.0.0.3:80',
      'http://static:80',
    ]);
    expect(u.targets[0]).toBe(first);
    expect(retired.map((t) => t.origin)).toEqual(['http://10.0.0.2:80']);
    // Host for preserve_host: false is the configured name (port 80 implied).
    expect(u.targets[0]!.hostPort).toBe('svc');
  });

  // A drain belongs to the URL: DNS answering with a drained URL (an address also listed on its
  // own, or one it had dropped) gave a new target that took traffic while the URL was draining.
  it('drains every target DNS gives at a drained URL, whenever it comes', () => {
    const u = upstream([target('svc', { resolve: true }), target('10.0.0.1')]);
    const states = () => u.targets.map((t) => `${t.origin.slice(7, -3)} ${u.state(t, 0)}`);
    expect(u.drain('http://10.0.0.1:80')).toBe(u.targets[0]);
    u.setResolved(0, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    expect(states()).toEqual(['10.0.0.1 draining', '10.0.0.2 up', '10.0.0.1 draining']);
    expect(u.drain('http://10.0.0.2:80')).toBe(u.targets[1]);
    u.setResolved(0, ['http://10.0.0.1:80']);
    u.setResolved(0, ['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    expect(states()).toEqual(['10.0.0.1 draining', '10.0.0.2 draining', '10.0.0.1 draining']);
    u.enable('http://10.0.0.1:80');
    expect(states()).toEqual(['10.0.0.1 up', '10.0.0.2 draining', '10.0.0.1 up']);
    expect(pick(u)).toBe('10.0.0.1');
  });
});
