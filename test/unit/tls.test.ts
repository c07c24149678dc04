import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ResolvedServer } from '../../src/config/types.js';
import { spiffeIdOf } from '../../src/core/spiffe-id.js';
import { WatchedFiles } from '../../src/core/watched-files.js';
import { hostOf, spiffeIdentityCheck, upstreamServerName } from '../../src/proxy/upstream-tls.js';
import { http1Fields } from '../../src/server/h2-compat.js';
import { listenerMode } from '../../src/server/listener-mode.js';

describe('spiffeIdOf', () => {
  it.each([
    ['URI:spiffe://example.org/client', 'spiffe://example.org/client'],
    ['DNS:a.test, URI:spiffe://example.org/ns/x/sa/y', 'spiffe://example.org/ns/x/sa/y'],
    ['DNS:a.test', ''],
    ['URI:https://example.org/', ''],
    ['URI:spiffe://example.org/a, URI:spiffe://example.org/b', ''],
    [undefined, ''],
    // Exactly one URI SAN, whatever the other's scheme (X.509-SVID section 2).
    ['URI:spiffe://example.org/mixed, URI:https://example.org/x', ''],
    ['URI:https://example.org/x, URI:spiffe://example.org/mixed', ''],
    ['URI:spiffe://example.org/a, URI:"https://example.org/a,b"', ''],
    // Other kinds of SAN do not count, quoted or not.
    [
      'DirName:"CN=a,O=b", email:a@b.test, IP Address:10.0.0.1, URI:spiffe://example.org/x',
      'spiffe://example.org/x',
    ],
    ['URI:spiffe://example.org', 'spiffe://example.org'],
    ['URI:spiffe://example.org/A_b.c-d/9', 'spiffe://example.org/A_b.c-d/9'],
    // Not SPIFFE ids (SPIFFE-ID section 2): query, fragment, port, user info, upper-case trust
    // domain, empty, dot or dot-dot segments, a trailing slash, percent-encoding.
    ['URI:spiffe://example.org/p?q=1', ''],
    ['URI:spiffe://example.org/p#f', ''],
    ['URI:spiffe://example.org:8443/p', ''],
    ['URI:spiffe://u@example.org/p', ''],
    ['URI:spiffe://Example.org/p', ''],
    ['URI:spiffe://example.org//p', ''],
    ['URI:spiffe://example.org/./p', ''],
    ['URI:spiffe://example.org/a/..', ''],
    ['URI:spiffe://example.org/p/', ''],
    ['URI:spiffe://example.org/p%20q', ''],
    ['URI:spiffe:///p', ''],
  ])('%s → %s', (san, id) => {
    expect(spiffeIdOf(san)).toBe(id);
  });

  it('takes an id of 2048 bytes and not one longer', () => {
    const id = (n: number) => `spiffe://example.org/${'a'.repeat(n - 'spiffe://example.org/'.length)}`;
    expect(spiffeIdOf(`URI:${id(2048)}`)).toBe(id(2048));
    expect(spiffeIdOf(`URI:${id(2049)}`)).toBe('');
  });
});

describe('spiffeIdentityCheck', () => {
  const check = spiffeIdentityCheck('spiffe://example.org/backend');
  const cert = (subjectaltname: string) => ({ subjectaltname }) as Parameters<typeof check>[1];

  it('accepts the pinned id whatever the host name', () => {
    expect(check('10.0.0.1', cert('URI:spiffe://example.org/backend'))).toBeUndefined();
  });

  it('refuses another id with a message naming both, as a host-name mismatch', () => {
    const err = check('x', cert('URI:spiffe://example.org/other')) as Error & { code: string };
    expect(err.message).toBe(
      'upstream certificate SPIFFE id spiffe://example.org/other, expected spiffe://example.org/backend',
    );
    expect(err.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(check('x', cert('DNS:backend'))?.message).toMatch(/no single valid SPIFFE id/);
    expect(check('x', cert('URI:spiffe://example.org/backend, URI:https://example.org/x'))?.message).toMatch(
      /no single valid SPIFFE id/,
    );
  });
});

describe('upstream server name', () => {
  it.each([
    ['backend.internal:8443', 'backend.internal'],
    ['backend.internal', 'backend.internal'],
    ['[::1]:8443', '[::1]'],
    ['10.0.0.1:443', '10.0.0.1'],
  ])('hostOf(%s) = %s', (hostPort, host) => {
    expect(hostOf(hostPort)).toBe(host);
  });

  it('is server_name, else a DNS host, never an IP address', () => {
    const tls = { ca: null, cert: null, key: null, serverName: 'svc.internal', spiffeId: null };
    expect(upstreamServerName(tls, '10.0.0.1')).toBe('svc.internal');
    expect(upstreamServerName(null, 'backend.internal')).toBe('backend.internal');
    expect(upstreamServerName(null, '10.0.0.1')).toBeUndefined();
    expect(upstreamServerName(null, '[::1]')).toBeUndefined();
  });
});

describe('http1Fields (HTTP/2 request headers as HTTP/1.1 fields)', () => {
  it('drops pseudo-headers and takes Host from :authority', () => {
    expect(
      http1Fields([':method', 'GET', ':path', '/', ':scheme', 'https', ':authority', 'a.test', 'x-a', '1']),
    ).toEqual(['host', 'a.test', 'x-a', '1']);
  });

  it('keeps a Host the client sent', () => {
    expect(http1Fields([':authority', 'a.test', 'host', 'a.test'])).toEqual(['host', 'a.test']);
  });

  it('joins cookie crumbs into one field where the first was', () => {
    expect(http1Fields([':authority', 'a.test', 'cookie', 'a=1', 'x', 'y', 'cookie', 'b=2'])).toEqual([
      'host',
      'a.test',
      'cookie',
      'a=1; b=2',
      'x',
      'y',
    ]);
  });
});

describe('listenerMode', () => {
  const server = (name: string, tls: boolean, http2 = false) =>
    ({ name, tls: tls ? { cert: 'c', key: 'k' } : null, http2 }) as unknown as ResolvedServer;

  it('is plain, TLS, or TLS with HTTP/2 when one server asks', () => {
    expect(listenerMode(':80', [server('a', false, true)])).toEqual({ tls: false, http2: false });
    expect(listenerMode(':443', [server('a', true), server('b', true)])).toEqual({ tls: true, http2: false });
    expect(listenerMode(':443', [server('a', true), server('b', true, true)])).toEqual({
      tls: true,
      http2: true,
    });
  });

  it('refuses servers that disagree on TLS', () => {
    expect(() => listenerMode('127.0.0.1:8443', [server('a', true), server('b', false)])).toThrow(
      /servers "a" set tls but "b" do not/,
    );
  });

  it('names a few of many servers that disagree on TLS, and how many more there are', () => {
    const many = Array.from({ length: 300 }, (_, i) => server(`s${i}`, i > 0));
    expect(() => listenerMode(':443', many)).toThrow(
      /^cannot listen on :443: servers "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8" and 291 more set tls but "s0" do not;/,
    );
  });
});

describe('WatchedFiles', () => {
  it('reloads on change, keeps the old value on a broken one, reports a stable failure once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-watch-'));
    try {
      const file = join(dir, 'value');
      const write = (text: string) => {
        writeFileSync(`${file}.tmp`, text);
        renameSync(`${file}.tmp`, file);
      };
      write('1');
      const reloads: number[] = [];
      const errors: unknown[] = [];
      const load = () => {
        const n = Number(readFileSync(file, 'utf8'));
        if (Number.isNaN(n)) throw new Error('not a number');
        return n;
      };
      const watch = new WatchedFiles(
        [file],
        load,
        { onReload: (v) => reloads.push(v), onError: (e) => errors.push(e) },
        60_000,
      );
      try {
        expect(watch.value).toBe(1);
        await watch.poll();
        expect(reloads).toEqual([]);
        write('2');
        await watch.poll();
        expect([watch.value, reloads]).toEqual([2, [2]]);
        write('broken');
        await watch.poll();
        expect([watch.value, errors.length]).toEqual([2, 0]);
        await watch.poll();
        await watch.poll();
        expect([watch.value, errors.length]).toEqual([2, 1]);
        write('3');
        await watch.poll();
        expect([watch.value, reloads]).toEqual([3, [2, 3]]);
      } finally {
        watch.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('WatchedFiles with a fallback', () => {
  it('starts on the fallback when the files cannot be loaded, and loads them once they change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-watch-'));
    try {
      const file = join(dir, 'value');
      const load = () => Number(readFileSync(file, 'utf8'));
      expect(() => new WatchedFiles([file], load, {}, 60_000)).toThrow(/ENOENT/);
      const failures: unknown[] = [];
      const reloads: number[] = [];
      const watch = new WatchedFiles([file], load, { onReload: (v) => reloads.push(v) }, 60_000, (err) => {
        failures.push(err);
        return 0;
      });
      try {
        expect([watch.value, failures.length]).toEqual([0, 1]);
        await watch.poll();
        expect([watch.value, reloads]).toEqual([0, []]);
        writeFileSync(file, '7');
        await watch.poll();
        expect([watch.value, reloads]).toEqual([7, [7]]);
      } finally {
        watch.close();
      }
      // A fallback that throws: the constructor does.
      rmSync(file);
      expect(
        () =>
          new WatchedFiles([file], load, {}, 60_000, (err) => {
            throw err;
          }),
      ).toThrow(/ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
