import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';

/** A route answering with its own name, so tests see which route won. */
const answer = (name: string) => ({ name, respond: { status: 200, body: name } });

describe('virtual hosts and routes', () => {
  let sluice: TestSluice;

  beforeAll(async () => {
    sluice = await startSluice({
      servers: [
        { name: 'first', listen: '127.0.0.1:0', server_name: ['first.test'], routes: [answer('first')] },
        { name: 'exact', listen: '127.0.0.1:0', server_name: ['www.example.com'], routes: [answer('exact')] },
        { name: 'lead', listen: '127.0.0.1:0', server_name: ['*.example.com'], routes: [answer('lead')] },
        {
          name: 'lead-long',
          listen: '127.0.0.1:0',
          server_name: ['*.api.example.com'],
          routes: [answer('lead-long')],
        },
        { name: 'trail', listen: '127.0.0.1:0', server_name: ['mail.*'], routes: [answer('trail')] },
        {
          name: 'regex',
          listen: '127.0.0.1:0',
          server_name: ['~^app\\d+\\.example\\.org$'],
          routes: [answer('regex')],
        },
        {
          name: 'fallback',
          listen: '127.0.0.1:0',
          default: true,
          server_name: ['fallback.test'],
          routes: [
            { name: 'exact-path', match: { path: '/docs' }, respond: { body: 'exact-path' } },
            {
              name: 'regex-path',
              match: { path_regex: '^/docs/.*\\.png$' },
              respond: { body: 'regex-path' },
            },
            { name: 'short-prefix', match: { path_prefix: '/docs/' }, respond: { body: 'short-prefix' } },
            { name: 'long-prefix', match: { path_prefix: '/docs/api/' }, respond: { body: 'long-prefix' } },
            {
              name: 'post-only',
              match: { path_prefix: '/form', methods: ['POST'] },
              respond: { body: 'post-only' },
            },
            {
              name: 'canary',
              match: { path_prefix: '/feature', headers: { 'x-canary': '1' } },
              respond: { body: 'canary' },
            },
            { name: 'feature', match: { path_prefix: '/feature' }, respond: { body: 'feature' } },
            {
              name: 'moved',
              match: { path_prefix: '/old/' },
              redirect: { to: 'https://$host/new$request_uri', status: 301 },
            },
            { name: 'empty', match: { path: '/empty' }, respond: { status: 204 } },
            {
              name: 'teapot',
              match: { path: '/teapot' },
              respond: { status: 418, body: '{"tea":true}', headers: { 'content-type': 'application/json' } },
            },
          ],
        },
      ],
    });
  });

  afterAll(() => sluice.close());

  const get = (
    path: string,
    host: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) => http(`${sluice.url}${path}`, { ...init, headers: { host, ...(init.headers ?? {}) } });

  it.each([
    ['www.example.com', 'exact'],
    ['WWW.Example.COM.', 'exact'],
    ['a.example.com', 'lead'],
    ['x.api.example.com', 'lead-long'],
    ['mail.example.net', 'trail'],
    ['app42.example.org', 'regex'],
    ['example.com', 'fallback'],
    ['unknown.test', 'fallback'],
    ['first.test:8080', 'first'],
  ])('Host %s selects server %s', async (host, server) => {
    const { body } = await get('/', host);
    // The fallback server has no catch-all route: a 404 there proves the default server answered.
    if (server === 'fallback') expect(body).toContain('SLUICE_E_ROUTE_NOT_FOUND');
    else expect(body).toBe(server);
  });

  it('uses the default server when the Host header is absent (HTTP/1.0)', async () => {
    const r = await rawRequest(sluice.port, 'GET /docs HTTP/1.0\r\n\r\n');
    expect(r.status).toBe(200);
    expect(r.text.endsWith('exact-path')).toBe(true);
    // $host is then the server's first server_name, as in nginx, not its name ("fallback").
    const moved = await rawRequest(sluice.port, 'GET /old/x HTTP/1.0\r\n\r\n');
    expect(moved.status).toBe(301);
    expect(moved.text).toMatch(/^location: https:\/\/fallback\.test\/new\/old\/x\r$/im);
  });

  it.each([
    ['/docs', 'exact-path'],
    ['/docs/a.png', 'regex-path'],
    ['/docs/api/a.png', 'regex-path'],
    ['/docs/api/x', 'long-prefix'],
    ['/docs/x', 'short-prefix'],
    ['/docs/./api/y', 'long-prefix'],
    ['/%64ocs', 'exact-path'],
    // Runs of slashes merged, as nginx's merge_slashes: no way past a route by doubling them.
    ['//docs', 'exact-path'],
    ['/docs//api///x', 'long-prefix'],
  ])('path %s picks route %s (exact, then regex in order, then longest prefix)', async (path, route) => {
    expect((await get(path, 'fallback.test')).body).toBe(route);
  });

  it('narrows routes by method and by header', async () => {
    expect((await get('/form', 'fallback.test', { method: 'POST', body: 'x' })).body).toBe('post-only');
    expect((await get('/form', 'fallback.test')).status).toBe(404);
    expect((await get('/feature', 'fallback.test', { headers: { 'x-canary': '1' } })).body).toBe('canary');
    expect((await get('/feature', 'fallback.test', { headers: { 'x-canary': '0' } })).body).toBe('feature');
  });

  it('redirects with variables', async () => {
    const { status, headers } = await get('/old/page?q=1', 'fallback.test');
    expect(status).toBe(301);
    expect(headers.location).toBe('https://fallback.test/new/old/page?q=1');
  });

  it('responds with the configured status, headers and body', async () => {
    const { status, body, headers } = await get('/teapot', 'fallback.test');
    expect(status).toBe(418);
    expect(headers['content-type']).toBe('application/json');
    expect(JSON.parse(body)).toEqual({ tea: true });
  });

  it('answers a 204 without Content-Length (RFC 9110 8.6)', async () => {
    const r = await rawRequest(
      sluice.port,
      'GET /empty HTTP/1.1\r\nHost: fallback.test\r\nConnection: close\r\n\r\n',
    );
    expect(r.status).toBe(204);
    expect(r.text.toLowerCase()).not.toContain('content-length');
  });

  it('answers 404 as problem+json with an error id when nothing matches', async () => {
    const { status, body, headers } = await get('/nothing-here', 'fallback.test');
    expect(status).toBe(404);
    expect(headers['content-type']).toBe('application/problem+json');
    const doc = JSON.parse(body);
    expect(doc).toMatchObject({ status: 404, code: 'SLUICE_E_ROUTE_NOT_FOUND' });
    expect(headers['x-sluice-error-id']).toBe(doc.request_id);
  });

  it('refuses a path that climbs above the root', async () => {
    const r = await rawRequest(sluice.port, 'GET /../etc/passwd HTTP/1.1\r\nHost: fallback.test\r\n\r\n');
    expect(r.status).toBe(400);
  });
});
