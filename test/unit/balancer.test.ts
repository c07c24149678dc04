import { describe, expect, it } from 'vitest';
import type { Peer, PickContext } from '../../src/balancer/balancer.js';
import { ConsistentHash, nginxRing } from '../../src/balancer/consistent-hash.js';
import { IpHash } from '../../src/balancer/ip-hash.js';
import { LeastConn } from '../../src/balancer/least-conn.js';
import { RandomTwo } from '../../src/balancer/random-two.js';
import { WeightedRoundRobin } from '../../src/balancer/weighted-round-robin.js';

interface TestPeer extends Peer {
  readonly name: string;
}

const peer = (name: string, weight = 1, conns = 0): TestPeer => ({
  name,
  hostPort: `${name}:80`,
  weight,
  effectiveWeight: weight,
  currentWeight: 0,
  conns,
});

const ctx = (key = '', usable: (p: TestPeer) => boolean = () => true): PickContext<TestPeer> => ({
  key,
  usable,
});
const names = (ps: (TestPeer | null)[]) => ps.map((p) => p?.name ?? '-').join(' ');

describe('smooth weighted round-robin (nginx)', () => {
  it('gives nginx sequence a a b a c a a for weights 5/1/1', () => {
    const b = new WeightedRoundRobin([peer('a', 5), peer('b'), peer('c')]);
    expect(names(Array.from({ length: 14 }, () => b.pick(ctx())))).toBe('a a b a c a a a a b a c a a');
  });

  it('spreads equal weights in turn and skips unusable peers', () => {
    const b = new WeightedRoundRobin([peer('a'), peer('b'), peer('c')]);
    expect(names(Array.from({ length: 6 }, () => b.pick(ctx())))).toBe('a b c a b c');
    expect(names(Array.from({ length: 3 }, () => b.pick(ctx('', (p) => p.name !== 'b'))))).toBe('a c a');
    expect(b.pick(ctx('', () => false))).toBeNull();
  });

  it('ramps a penalised peer back up by one per pick', () => {
    const a = peer('a', 3);
    const b = new WeightedRoundRobin([a, peer('b', 3)]);
    a.effectiveWeight = 0;
    b.pick(ctx());
    expect(a.effectiveWeight).toBe(1);
    b.pick(ctx());
    b.pick(ctx());
    expect(a.effectiveWeight).toBe(3);
  });
});

describe('least_conn (nginx)', () => {
  it('picks the fewest requests in flight relative to weight', () => {
    const a = peer('a', 1, 3);
    const b = peer('b', 2, 4); // 4/2 = 2 < 3
    const c = peer('c', 1, 5);
    expect(new LeastConn([a, b, c]).pick(ctx())?.name).toBe('b');
  });

  it('breaks ties by weighted round-robin', () => {
    const b = new LeastConn([peer('a', 2), peer('b', 1), peer('c', 1, 9)]);
    expect(names(Array.from({ length: 6 }, () => b.pick(ctx())))).toBe('a b a a b a');
  });

  it('skips unusable peers', () => {
    const b = new LeastConn([peer('a'), peer('b', 1, 5)]);
    expect(b.pick(ctx('', (p) => p.name === 'b'))?.name).toBe('b');
    expect(b.pick(ctx('', () => false))).toBeNull();
  });
});

describe('ip_hash (nginx)', () => {
  const peers = ['a', 'b', 'c', 'd'].map((n) => peer(n));
  const clients = Array.from({ length: 400 }, (_, i) => `10.${i % 7}.${Math.floor(i / 7)}.${(i * 37) % 251}`);

  it('maps a client to the same peer every time, and a /24 to one peer', () => {
    const b = new IpHash(peers);
    expect(b.pick(ctx('192.168.1.10'))).toBe(b.pick(ctx('192.168.1.10')));
    expect(b.pick(ctx('192.168.1.10'))).toBe(b.pick(ctx('192.168.1.200')));
  });

  it('hashes the whole IPv6 address', () => {
    const b = new IpHash(peers);
    const seen = new Set(
      Array.from({ length: 50 }, (_, i) => b.pick(ctx(`2001:db8::${i.toString(16)}`))?.name),
    );
    expect(seen.size).toBeGreaterThan(1);
  });

  it('keeps the slot of an unusable (down) peer, so other clients do not move', () => {
    const b = new IpHash(peers);
    const before = clients.map((c) => b.pick(ctx(c))!.name);
    const after = clients.map((c) => b.pick(ctx(c, (p) => p.name !== 'c'))!.name);
    for (let i = 0; i < clients.length; i++) {
      if (before[i] !== 'c') expect(after[i]).toBe(before[i]);
      else expect(after[i]).not.toBe('c');
    }
    expect(before.filter((n) => n === 'c').length).toBeGreaterThan(40);
  });

  it('falls back to round-robin after 20 rehashes', () => {
    const b = new IpHash([peer('a'), peer('b')]);
    expect(b.pick(ctx('10.0.0.1', (p) => p.name === 'b'))?.name).toBe('b');
    expect(b.pick(ctx('10.0.0.1', () => false))).toBeNull();
  });
});

describe('consistent hash (ketama)', () => {
  const keys = Array.from({ length: 4000 }, (_, i) => `user-${i}`);
  const mapping = (ps: TestPeer[]) => {
    const b = new ConsistentHash(ps);
    return keys.map((k) => b.pick(ctx(k))!.name);
  };

  it('maps a key to the same peer every time and spreads keys evenly', () => {
    const m = mapping(['a', 'b', 'c', 'd'].map((n) => peer(n)));
    const counts = new Map<string, number>();
    for (const n of m) counts.set(n, (counts.get(n) ?? 0) + 1);
    for (const n of ['a', 'b', 'c', 'd']) expect(counts.get(n)).toBeGreaterThan(keys.length * 0.15);
    expect(mapping(['a', 'b', 'c', 'd'].map((n) => peer(n)))).toEqual(m);
  });

  it('moves about 1/N of the keys when one of N peers is added, and only to the new peer', () => {
    const four = mapping(['a', 'b', 'c', 'd'].map((n) => peer(n)));
    const five = mapping(['a', 'b', 'c', 'd', 'e'].map((n) => peer(n)));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (four[i] !== five[i]) {
        moved++;
        expect(five[i]).toBe('e');
      }
    }
    expect(moved / keys.length).toBeGreaterThan(0.1);
    expect(moved / keys.length).toBeLessThan(0.3);
  });

  it('moves only the keys of a removed peer', () => {
    const four = mapping(['a', 'b', 'c', 'd'].map((n) => peer(n)));
    const three = mapping(['a', 'b', 'd'].map((n) => peer(n)));
    for (let i = 0; i < keys.length; i++) if (four[i] !== 'c') expect(three[i]).toBe(four[i]);
  });

  it('gives a key whose peer is unusable to the next point on the ring', () => {
    const b = new ConsistentHash(['a', 'b', 'c'].map((n) => peer(n)));
    const first = b.pick(ctx('k1'))!;
    const next = b.pick(ctx('k1', (p) => p !== first))!;
    expect(next).not.toBe(first);
    expect(b.pick(ctx('k1', (p) => p !== first))).toBe(next);
  });

  it('spreads requests with an empty key round-robin, as nginx, instead of onto one peer', () => {
    const b = new ConsistentHash(['a', 'b', 'c'].map((n) => peer(n)));
    expect(Array.from({ length: 6 }, () => b.pick(ctx(''))!.name).sort()).toEqual([
      'a',
      'a',
      'b',
      'b',
      'c',
      'c',
    ]);
  });

  // Expected owners computed with nginx's ring (ngx_http_upstream_init_chash) for the same server
  // addresses, and checked against nginx 1.22 itself for 300 request URIs on four loopback ports.
  const owners = (servers: [string, number][], key: (i: number) => string) => {
    const ps = servers.map(([hostPort, weight], i) => ({ ...peer('abcd'[i]!, weight), hostPort }));
    const b = new ConsistentHash(ps);
    return Array.from({ length: 48 }, (_, i) => b.pick(ctx(key(i)))!.name).join('');
  };

  it('maps keys as nginx does for the same server addresses', () => {
    const servers = [11, 12, 13, 14].map((n): [string, number] => [`10.0.0.${n}:8080`, 1]);
    expect(owners(servers, (i) => `/item/${i}`)).toBe('dcacbddcbdbbbbbcacdbacdbacaabcbcdadcdbabcadcbdda');
  });

  it('maps keys as nginx does with weights, a name without a port and an IPv6 address', () => {
    const servers: [string, number][] = [
      ['app1.internal:80', 2],
      ['app2.internal', 1],
      ['[2001:db8::1]:8080', 1],
    ];
    expect(owners(servers, (i) => `user-${i}`)).toBe('baaccaaacccabbaaaaaabaaaccaaacbabaacabbabaabbbcc');
    expect(nginxRing(servers.map(([name, weight]) => ({ name, weight })))).toHaveLength(640);
  });

  it('gives the addresses of one name its points, taking turns among them', () => {
    const one = new ConsistentHash([{ ...peer('app'), hostPort: 'app.internal:8080' }, peer('b')]);
    const two = new ConsistentHash([
      { ...peer('app1'), hostPort: 'app.internal:8080' },
      { ...peer('app2'), hostPort: 'app.internal:8080' },
      peer('b'),
    ]);
    const key = keys.find((k) => one.pick(ctx(k))!.name === 'app')!;
    expect(Array.from({ length: 4 }, () => two.pick(ctx(key))!.name)).toEqual([
      'app1',
      'app2',
      'app1',
      'app2',
    ]);
    for (const k of keys.slice(0, 200))
      expect(two.pick(ctx(k))!.name === 'b').toBe(one.pick(ctx(k))!.name === 'b');
  });

  it('gives a heavier peer proportionally more keys', () => {
    const m = mapping([peer('a', 3), peer('b', 1)]);
    const share = m.filter((n) => n === 'a').length / m.length;
    expect(share).toBeGreaterThan(0.65);
    expect(share).toBeLessThan(0.85);
  });
});

describe('random with two choices', () => {
  it('takes the less loaded of two random draws', () => {
    const draws = [0.1, 0.9]; // a, then b
    const a = peer('a', 1, 5);
    const b = peer('b', 1, 1);
    const r = new RandomTwo([a, b], () => draws.shift() ?? 0.5);
    expect(r.pick(ctx())?.name).toBe('b');
  });

  it('draws by weight', () => {
    const r = new RandomTwo([peer('a', 9), peer('b', 1)]);
    let a = 0;
    for (let i = 0; i < 2000; i++) if (r.pick(ctx())?.name === 'a') a++;
    // With equal loads the first draw wins: a about 90 % of the time.
    expect(a / 2000).toBeGreaterThan(0.85);
    expect(a / 2000).toBeLessThan(0.95);
  });

  it('falls back to round-robin, and to null when nothing is usable', () => {
    const r = new RandomTwo([peer('a'), peer('b')], () => 0);
    expect(r.pick(ctx('', (p) => p.name === 'b'))?.name).toBe('b');
    expect(r.pick(ctx('', () => false))).toBeNull();
  });
});
