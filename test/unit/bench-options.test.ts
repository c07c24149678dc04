/** `sluice bench` argument checking and the run plan: pure. */
import { describe, expect, it } from 'vitest';
import { type BenchArgs, type BenchOptions, parseBenchArgs } from '../../src/ops/bench/bench-options.js';
import { planRuns } from '../../src/ops/bench/run-plan.js';

function ok(url: string, args: BenchArgs = {}): BenchOptions {
  const r = parseBenchArgs(url, args);
  if (!r.ok) throw new Error(`unexpected problems: ${r.problems.join('; ')}`);
  return r.options;
}

function problems(url: string, args: BenchArgs = {}): readonly string[] {
  const r = parseBenchArgs(url, args);
  if (r.ok) throw new Error('expected problems');
  return r.problems;
}

describe('parseBenchArgs', () => {
  it('fills the documented defaults', () => {
    expect(ok('http://127.0.0.1:8080/x?y=1#frag')).toEqual({
      url: 'http://127.0.0.1:8080/x?y=1',
      compareUrl: null,
      connections: 50,
      durationMs: 10_000,
      rounds: 1,
      warmupMs: 0,
      method: 'GET',
      headers: {},
      body: null,
      pipelining: 1,
      timeoutMs: 10_000,
      keepAlive: true,
      json: false,
    });
  });

  it('reads every option', () => {
    const o = ok('https://example.test', {
      connections: '20',
      duration: '1m',
      compare: 'http://127.0.0.1:9090/',
      rounds: '5',
      warmup: '500ms',
      method: 'put',
      header: ['X-A: 1', 'x-a: 2', 'Accept:  text/plain '],
      body: '{}',
      pipelining: '4',
      timeout: '2s',
      keepalive: false,
      json: true,
    });
    expect(o).toMatchObject({
      url: 'https://example.test/',
      compareUrl: 'http://127.0.0.1:9090/',
      connections: 20,
      durationMs: 60_000,
      rounds: 5,
      warmupMs: 500,
      method: 'PUT',
      body: '{}',
      pipelining: 4,
      timeoutMs: 2000,
      keepAlive: false,
      json: true,
    });
    // Repeated names join (RFC 9110 5.3) under the first spelling; --no-keepalive adds Connection: close.
    expect(o.headers).toEqual({ 'X-A': '1, 2', Accept: 'text/plain', Connection: 'close' });
  });

  it('--compare defaults to 3 rounds; --body makes the default method POST', () => {
    expect(ok('http://a.test/', { compare: 'http://b.test/' }).rounds).toBe(3);
    expect(ok('http://a.test/', { body: 'x' }).method).toBe('POST');
    expect(ok('http://a.test/', { body: 'x', method: 'patch' }).method).toBe('PATCH');
  });

  it('--no-keepalive keeps a Connection header the user gave', () => {
    expect(ok('http://a.test/', { keepalive: false, header: ['connection: Close'] }).headers).toEqual({
      connection: 'Close',
    });
  });

  it('reports every problem at once', () => {
    const p = problems('localhost:8080', {
      connections: '0',
      duration: '10',
      warmup: 'soon',
      pipelining: '1.5',
      timeout: '500ms',
      method: 'FETCH',
      header: ['no-colon', 'Bad Name: x', 'Content-Length: 3'],
      rounds: '2',
    });
    expect(p).toEqual([
      'URL "localhost:8080" is not an http:// or https:// URL',
      '-c/--connections "0" is not a whole number from 1 to 10000',
      '-p/--pipelining "1.5" is not a whole number from 1 to 256',
      '--rounds needs --compare: rounds alternate between two targets',
      '-d/--duration "10" is not a duration: give a number with a unit, e.g. 500ms, 10s, 1m',
      '--warmup "soon" is not a duration: give a number with a unit, e.g. 500ms, 10s, 1m',
      "--timeout 500ms is under 1s, the load generator's smallest timeout",
      '--method "FETCH" is not one of GET, POST, PUT, DELETE, OPTIONS, TRACE, PATCH',
      '-H/--header "no-colon" is not "Name: value"',
      '-H/--header "Bad Name: x" is not "Name: value"',
      '-H/--header "Content-Length: 3": Content-Length is set from --body; remove it',
    ]);
  });

  it.each([
    ['not a url', 'is not a URL'],
    ['ftp://a.test/', 'is not an http:// or https:// URL'],
  ])('rejects the URL %j', (url, message) => {
    expect(problems(url)[0]).toContain(message);
  });

  it('rejects HEAD, which the load generator cannot measure', () => {
    expect(problems('http://a.test/', { method: 'head' })).toEqual([
      '--method HEAD is not supported: the load generator would wait for a body that never comes',
    ]);
  });

  it('rejects a bad --compare URL and too many connections', () => {
    expect(problems('http://a.test/', { compare: 'b.test', connections: '10001' })).toEqual([
      '--compare "b.test" is not a URL: give a full one, e.g. http://127.0.0.1:8080/',
      '-c/--connections "10001" is not a whole number from 1 to 10000',
    ]);
  });

  it('needs at least 100 ms a run', () => {
    expect(problems('http://a.test/', { duration: '50ms' })).toEqual([
      '-d/--duration 50ms is under 100 ms: give e.g. 10s',
    ]);
    expect(problems('http://a.test/', { duration: '250ms', compare: 'http://b.test/' })).toEqual([
      '-d/--duration 250ms over 3 rounds leaves 83 ms a round: give at least 300ms',
    ]);
    expect(ok('http://a.test/', { duration: '300ms', compare: 'http://b.test/' }).durationMs).toBe(300);
  });

  it('rejects CR or LF in a header value', () => {
    expect(problems('http://a.test/', { header: ['X-A: 1\r\nX-B: 2'] })[0]).toContain(
      'cannot hold CR, LF or NUL',
    );
  });
});

describe('planRuns', () => {
  const base = { url: 'http://a/', compareUrl: null, durationMs: 1000, rounds: 1, warmupMs: 0 };

  it('one measured run for a single target', () => {
    expect(planRuns(base)).toEqual([
      { target: 'a', url: 'http://a/', warmup: false, round: 1, durationMs: 1000 },
    ]);
  });

  it('warm-ups first, then A and B alternating, -d split over the rounds', () => {
    const plan = planRuns({ ...base, compareUrl: 'http://b/', durationMs: 6000, rounds: 3, warmupMs: 500 });
    expect(plan.map((r) => `${r.warmup ? 'w' : r.round}${r.target}:${r.durationMs}`)).toEqual([
      'wa:500',
      'wb:500',
      '1a:2000',
      '1b:2000',
      '2a:2000',
      '2b:2000',
      '3a:2000',
      '3b:2000',
    ]);
  });
});
