/**
 * keepalive_timeout over HTTP/2, timed as nginx times it: only while the connection has no stream
 * open. A request waiting on a slow upstream, or a body still being uploaded, keeps its connection
 * usable for new streams; once the last stream is done the connection gets GOAWAY a
 * keepalive_timeout later, and a client that opens no stream is closed whatever else it sends.
 */
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('keepalive_timeout over HTTP/2', () => {
  let up: TestUpstream;
  let sluice: TestSluice;
  let pki: TestPki;
  let ca: Buffer;
  /** Upstream answers held until the test lets them go. */
  const held = new Map<string, http.ServerResponse>();

  beforeAll(async () => {
    up = await startUpstream((req, res) => {
      held.set(req.url ?? '', res);
    });
    pki = makePki();
    const root = pki.ca('root');
    ca = readFileSync(root.cert);
    const leaf = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          limits: { keepalive_timeout: '1s', request_timeout: '2s' },
          routes: [
            { match: { path_prefix: '/slow/' }, proxy: { url: up.url, timeouts: { read: '30s' } } },
            { match: { path: '/ok' }, respond: { status: 200, body: 'ok\n' } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    for (const res of held.values()) res.destroy();
    await sluice.close();
    await up.close();
    pki.remove();
  });

  /** A client whose answers and GOAWAY are noted in `events`, in the order they came. */
  async function connect(): Promise<{
    client: http2.ClientHttp2Session;
    events: string[];
    closed: Promise<void>;
    request: (path: string, headers?: http2.OutgoingHttpHeaders) => http2.ClientHttp2Stream;
  }> {
    const events: string[] = [];
    const client = http2.connect(`https://127.0.0.1:${sluice.port}`, { ca, servername: 'a.test' });
    client.on('error', () => undefined);
    client.on('goaway', (_code, lastStreamId) => events.push(`GOAWAY ${lastStreamId}`));
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await new Promise((resolve) => client.once('connect', resolve));
    const request = (path: string, headers: http2.OutgoingHttpHeaders = {}) => {
      const req = client.request({ ':path': path, ...headers });
      req.on('error', () => undefined);
      req.on('response', (h) => events.push(`${path} ${h[':status']}`));
      req.resume();
      return req;
    };
    return { client, events, closed, request };
  }

  const closedWithin = (closed: Promise<void>, ms: number) =>
    Promise.race([closed, sleep(ms).then(() => Promise.reject(new Error('still open')))]);

  // The connection was sent GOAWAY at keepalive_timeout while stream 1 still waited on its
  // upstream: stream 3 could not be opened, and the browser had to retry it elsewhere.
  it('keeps a connection whose stream waits on its upstream, and serves new streams on it', async () => {
    const { client, events, closed, request } = await connect();
    try {
      const slow = request('/slow/waiting');
      slow.end();
      await until(() => held.get('/slow/waiting'), 'the upstream request');
      // Past keepalive_timeout, with stream 1 still open.
      await sleep(1500);
      const ok = request('/ok');
      ok.end();
      await new Promise((resolve) => ok.once('end', resolve));
      held.get('/slow/waiting')!.end('done');
      await new Promise((resolve) => slow.once('end', resolve));
      // With no stream open, keepalive_timeout runs: GOAWAY, then the connection closes.
      await closedWithin(closed, 5000);
      expect(events).toEqual(['/ok 200', '/slow/waiting 200', 'GOAWAY 3']);
    } finally {
      client.destroy();
    }
  });

  // The upload's own request_timeout answers it; the connection was sent GOAWAY before that.
  it('leaves a stream still uploading its body to request_timeout', async () => {
    const { client, events, closed, request } = await connect();
    try {
      const upload = request('/slow/upload', { ':method': 'POST', 'content-length': '100' });
      upload.write('x');
      await until(() => events.find((e) => e.startsWith('/slow/upload')), 'the answer', 5000);
      await closedWithin(closed, 5000);
      expect(events).toEqual(['/slow/upload 408', 'GOAWAY 1']);
      expect(held.has('/slow/upload')).toBe(false);
    } finally {
      client.destroy();
    }
  });

  // As nginx: a PING (or SETTINGS, WINDOW_UPDATE) is no request, and does not restart the clock.
  it('closes a connection that opens no stream, even one that keeps pinging', async () => {
    const { client, events, closed } = await connect();
    const pinging = setInterval(() => {
      if (!client.closed && !client.destroyed) client.ping(() => undefined);
    }, 200);
    try {
      await closedWithin(closed, 5000);
      expect(events).toEqual(['GOAWAY 0']);
    } finally {
      clearInterval(pinging);
      client.destroy();
    }
  });
});
