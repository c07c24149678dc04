import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('proxy forwarding', () => {
  let up: TestUpstream;
  let sluice: TestSluice;

  beforeAll(async () => {
    up = await startUpstream((req, res, body) => {
      if (req.url?.startsWith('/hop')) {
        res.writeHead(200, [
          'Connection',
          'keep-alive, X-Secret-Hop',
          'Keep-Alive',
          'timeout=5',
          'X-Secret-Hop',
          'leak',
          'Proxy-Authenticate',
          'Basic',
          'X-Kept',
          'yes',
          'Server',
          'upstream/1.0',
          'Content-Length',
          '2',
        ]);
        res.end('ok');
        return;
      }
      const doc = JSON.stringify({ url: req.url, method: req.method, body: body.toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'x-internal': 'secret' });
      res.end(doc);
    });
    sluice = await startSluice({
      log: { access: 'stdout' },
      servers: [
        {
          name: 'web',
          listen: '127.0.0.1:0',
          trusted_proxies: ['10.0.0.0/8'],
          routes: [
            {
              name: 'api',
              match: { path_prefix: '/api/' },
              proxy: {
                url: `${up.url}/v1`,
                strip_prefix: '/api',
                set_headers: {
                  'X-Client': '$remote_addr',
                  'X-Req': '$request_id',
                  'X-Agent': '$http_user_agent',
                },
                remove_headers: ['X-Drop-Me', 'X_Internal'],
                response_headers: { set: { 'X-Frame-Options': 'DENY' }, remove: ['X-Internal'] },
              },
            },
            {
              name: 'rewrite-host',
              match: { path_prefix: '/nohost/' },
              proxy: { upstream: 'be', preserve_host: false },
            },
            {
              name: 'set-host',
              match: { path_prefix: '/sethost/' },
              proxy: { upstream: 'be', preserve_host: false, set_headers: { Host: 'internal.$host' } },
            },
            {
              name: 'team',
              match: { path_prefix: '/@team/' },
              proxy: { url: `${up.url}/t`, strip_prefix: '/@team' },
            },
            {
              name: 'mid-segment',
              match: { path_prefix: '/mid' },
              proxy: { url: `${up.url}/base`, strip_prefix: '/mid' },
            },
            { name: 'naive', match: { path_prefix: '/naïve/' }, respond: { status: 403, body: 'naive' } },
            { name: 'cafe', match: { path_prefix: '/caf%c3%a9/' }, respond: { status: 403, body: 'cafe' } },
            { name: 'rest', proxy: { upstream: 'be' } },
          ],
        },
      ],
      upstreams: { be: { targets: [{ url: up.url }] } },
    });
  });

  afterAll(async () => {
    await sluice.close();
    await up.close();
  });

  const last = () => up.seen[up.seen.length - 1]!;

  it('preserves Host and sets the X-Forwarded-* headers', async () => {
    const res = await http(`${sluice.url}/plain?x=1`, {
      headers: { host: 'example.test', 'x-forwarded-for': '6.6.6.6' },
    });
    expect(res.status).toBe(200);
    const seen = last();
    expect(seen.url).toBe('/plain?x=1');
    expect(seen.headers.host).toBe('example.test');
    // The peer (127.0.0.1) is not a trusted proxy: the chain starts afresh.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-real-ip']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('example.test');
  });

  it('rewrites Host to the target when preserve_host is false', async () => {
    await http(`${sluice.url}/nohost/a`, { headers: { host: 'example.test' } });
    expect(last().headers.host).toBe(`127.0.0.1:${up.port}`);
  });

  it('sends one Host, the one set_headers writes, even with preserve_host: false', async () => {
    const res = await http(`${sluice.url}/sethost/a`, { headers: { host: 'example.test' } });
    expect(res.status).toBe(200);
    const hosts = last().rawHeaders.filter(
      (_, i, raw) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'host',
    );
    expect(hosts).toEqual(['internal.example.test']);
  });

  it('strips the prefix, prepends the base path, keeps the query', async () => {
    const res = await fetch(`${sluice.url}/api/users/7?fields=name`);
    expect(await res.json()).toMatchObject({ url: '/v1/users/7?fields=name' });
  });

  it('matches routes with %2F read as /, and forwards the %2F the client sent', async () => {
    // Matched as sent, `/api%2Fusers` went to the catch-all route (and past the /api/ route's rules).
    const viaEncoded = await fetch(`${sluice.url}/api%2Fusers%2F7`);
    expect(await viaEncoded.json()).toMatchObject({ url: '/v1/users/7' });
    // After the prefix, an encoded slash is the app's business: it stays as sent.
    const kept = await fetch(`${sluice.url}/api/projects/group%2Fname`);
    expect(await kept.json()).toMatchObject({ url: '/v1/projects/group%2Fname' });
    const plain = await fetch(`${sluice.url}/files/a%2Fb`);
    expect(await plain.json()).toMatchObject({ url: '/files/a%2Fb' });
  });

  it('matches routes with path characters escaped, as nginx decodes them, and forwards the escapes sent', async () => {
    // Matched as sent, `/%40team/` went past the route for `/@team/` (and its rules) to the catch-all.
    for (const path of ['/%40team/x', '/@team/x', '/%40te%61m/x']) {
      const res = await fetch(`${sluice.url}${path}`);
      expect(await res.json(), path).toMatchObject({ url: '/t/x' });
    }
    // After the prefix, what the client escaped stays escaped; nothing a path may not hold goes out.
    const rest = await fetch(`${sluice.url}/%40team/a%20b%3F%25`);
    expect(await rest.json()).toMatchObject({ url: '/t/a%20b%3F%25' });
    // Outside any such route, the path goes out as the client escaped it.
    const kept = await fetch(`${sluice.url}/files/a%3Bb%40c`);
    expect(await kept.json()).toMatchObject({ url: '/files/a%3Bb%40c' });
  });

  it('refuses a strip that would make a dot segment, which let a path climb above the base path', async () => {
    // Cut mid-segment, the rest gets a `/`: `/midx` goes out as `/base/x`, as before.
    const plain = await fetch(`${sluice.url}/midx/y?q=1`);
    expect(await plain.json()).toMatchObject({ url: '/base/x/y?q=1' });
    const kept = await fetch(`${sluice.url}/mid..x/y`);
    expect(await kept.json()).toMatchObject({ url: '/base/..x/y' });
    // `/mid../admin` went out as `/base/../admin`: an upstream resolving it served `/admin`.
    const before = up.seen.length;
    for (const path of ['/mid../admin', '/mid%2e%2e/admin', '/mid.%2E/admin', '/mid..', '/mid.', '/mid./x']) {
      const r = await rawRequest(sluice.port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      expect(r.status, path).toBe(400);
      expect(r.text, path).toContain('SLUICE_E_CLIENT_BAD_REQUEST');
    }
    expect(up.seen.length).toBe(before);
  });

  it('matches a route written with non-ASCII text or lower-case escapes, which never matched', async () => {
    for (const path of ['/na%C3%AFve/x', '/na%c3%afve/x']) {
      const res = await fetch(`${sluice.url}${path}`);
      expect([res.status, await res.text()], path).toEqual([403, 'naive']);
    }
    const cafe = await fetch(`${sluice.url}/caf%C3%A9/menu`);
    expect([cafe.status, await cafe.text()]).toEqual([403, 'cafe']);
  });

  it('applies set_headers with variables and remove_headers', async () => {
    await fetch(`${sluice.url}/api/x`, { headers: { 'x-drop-me': '1', 'user-agent': 'tester/2' } });
    const h = last().headers;
    expect(h['x-drop-me']).toBeUndefined();
    expect(h['x-client']).toBe('127.0.0.1');
    expect(h['x-agent']).toBe('tester/2');
    expect(h['x-req']).toMatch(/^[0-9a-f]{24}$/);
  });

  it('drops a client header spelling with _ one it sets or removes, which CGI-style upstreams read alike', async () => {
    await fetch(`${sluice.url}/api/x`, {
      headers: {
        X_Client: 'spoofed',
        'X_Drop-Me': '1',
        X_Forwarded_For: '6.6.6.6',
        x_real_ip: '6.6.6.6',
        Proxy_Connection: 'keep-alive',
        My_Own_Header: 'kept',
        // Removed by the route as X_Internal: the dashed spelling goes too.
        'X-Internal': 'spoofed',
      },
    });
    const h = last().headers;
    // An upstream reading HTTP_X_CLIENT took the client's value (or both, joined) for the route's.
    for (const name of [
      'x_client',
      'x_drop-me',
      'x_forwarded_for',
      'x_real_ip',
      'proxy_connection',
      'x-internal',
    ])
      expect(h[name], name).toBeUndefined();
    expect(h['x-client']).toBe('127.0.0.1');
    // Other names with _ pass (nginx drops them all unless underscores_in_headers is on).
    expect(h.my_own_header).toBe('kept');
  });

  it('applies response_headers set and remove', async () => {
    const res = await fetch(`${sluice.url}/api/x`);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-internal')).toBeNull();
  });

  it('drops hop-by-hop request headers and those Connection names', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /hopreq HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop-Named\r\nX-Hop-Named: 1\r\n' +
        'Keep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nX-Normal: 2\r\n\r\n',
      { waitMs: 500 },
    );
    expect(r.status).toBe(200);
    const h = last().headers;
    expect(h['x-hop-named']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h['proxy-authorization']).toBeUndefined();
    expect(h.te).toBeUndefined();
    expect(h['x-normal']).toBe('2');
  });

  it('keeps the client Host when Connection names it', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /hophost HTTP/1.1\r\nHost: public.example\r\nConnection: Host, close\r\n\r\n',
      { waitMs: 500 },
    );
    expect(r.status).toBe(200);
    expect(last().headers.host).toBe('public.example');
  });

  it('drops hop-by-hop response headers and those the upstream Connection names', async () => {
    const res = await fetch(`${sluice.url}/hop`);
    expect(await res.text()).toBe('ok');
    expect(res.headers.get('x-secret-hop')).toBeNull();
    // sluice's own Keep-Alive (for its client connection) may be there; the upstream's must not.
    expect(res.headers.get('keep-alive')).not.toBe('timeout=5');
    expect(res.headers.get('proxy-authenticate')).toBeNull();
    expect(res.headers.get('x-kept')).toBe('yes');
    expect(res.headers.get('server')).toBe('upstream/1.0');
  });

  it('appends to X-Forwarded-For and believes it only from trusted proxies', async () => {
    // Trust is decided on the TCP peer; 127.0.0.1 is not in 10.0.0.0/8, so the client's chain is dropped.
    await fetch(`${sluice.url}/xff`, { headers: { 'x-forwarded-for': '10.1.1.1, 203.0.113.9' } });
    expect(last().headers['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('forwards request bodies, buffered and chunked', async () => {
    const res = await fetch(`${sluice.url}/api/post`, { method: 'POST', body: 'hello body' });
    expect(await res.json()).toMatchObject({ method: 'POST', body: 'hello body' });
    const chunked = await rawRequest(
      sluice.port,
      'POST /api/chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    expect(chunked.status).toBe(200);
    expect(chunked.text).toContain('"body":"hello world"');
  });

  it('reuses upstream connections (keep-alive)', async () => {
    const before = up.connections;
    for (let i = 0; i < 20; i++) await (await fetch(`${sluice.url}/ka/${i}`)).text();
    expect(up.connections - before).toBeLessThanOrEqual(1);
  });

  it('writes an access line with the contract fields, without the query string', async () => {
    const before = sluice.accessLines().length;
    await (await fetch(`${sluice.url}/api/logged?token=secret`)).text();
    const lines = await sluice.waitForAccessLines(before + 1);
    const line = lines[lines.length - 1]!;
    expect(line).toMatchObject({
      msg: 'request',
      level: 'info',
      method: 'GET',
      path: '/api/logged',
      status: 200,
      status_text: 'OK',
      server: 'web',
      route: 'api',
      remote_addr: '127.0.0.1',
      upstream: up.url,
      target: up.url,
      attempts: 1,
    });
    expect(typeof line.duration_ms).toBe('number');
    expect(line.bytes_out).toBeGreaterThan(0);
    expect(String(line.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(JSON.stringify(line)).not.toContain('secret');
  });
});
