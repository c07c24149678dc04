/**
 * handler_timeout: a handler that never starts its answer is answered 504 SLUICE_E_HANDLER_TIMEOUT
 * (it left its client waiting until the client gave up, logged 499), told as if its client had
 * left, and what it does afterwards goes nowhere, quietly; a stream that sent its head stays open,
 * and a request body still arriving postpones the deadline. Over HTTP/1.1 and HTTP/2 (TLS).
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/raw-http.js';
import { sleep, until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

const LISTENER = 'test/fixtures/handlers/stalled-listener-app.ts';
const FETCH = 'test/fixtures/handlers/stalled-fetch-app.ts';
/** What the listener app saw of each request (by URL), and how the fetch app's signal aborted (by path). */
const listenerSaw = () =>
  (globalThis as { stalledListener?: Map<string, { events: string[]; lateThrew: string | null }> })
    .stalledListener!;
const fetchSaw = () => (globalThis as { stalledFetch?: Map<string, string> }).stalledFetch!;

let pki: TestPki;
let ca: Buffer;
let h1: TestSluice;
let h2: TestSluice;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  const leaf = root.leaf('h.test', { dns: ['h.test'], usage: 'server' });
  ca = readFileSync(root.cert);
  const routes = [
    { name: 'fetch', match: { path_prefix: '/f/' }, handler: FETCH, handler_timeout: '300ms' },
    { name: 'untimed', match: { path_prefix: '/untimed/' }, handler: LISTENER, handler_timeout: '0s' },
    { name: 'listener', handler: LISTENER, handler_timeout: '300ms' },
  ];
  h1 = await startSluice({ servers: [{ listen: '127.0.0.1:0', routes }] });
  h2 = await startSluice({
    servers: [{ listen: '127.0.0.1:0', http2: true, tls: { cert: leaf.cert, key: leaf.key }, routes }],
  });
});

afterAll(async () => {
  await Promise.all([h1?.close(), h2?.close()]);
  pki?.remove();
});

/** The access line of the request for `path`. */
function accessLine(sluice: TestSluice, path: string) {
  return until(
    () => sluice.logs.find((l) => l.msg === 'request' && l.path === path),
    `the access line of ${path}`,
  );
}

/** Log lines at warn or above. */
function complaints(sluice: TestSluice) {
  return sluice.logs.filter((l) => l.level === 'error' || l.level === 'warn' || l.level === 'fatal');
}

/** The status, fields and body of the first answer in raw HTTP/1.1 `text`. */
function firstAnswer(text: string): { status: number; fields: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, end).split('\r\n');
  const fields = Object.fromEntries(
    lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  const length = Number(fields['content-length'] ?? 0);
  return { status: Number(lines[0]!.split(' ')[1]), fields, body: text.slice(end + 4, end + 4 + length) };
}

/** One HTTP/2 GET; its status and body, or 'timeout' after `timeoutMs`. */
function h2Get(path: string, timeoutMs = 5000): Promise<{ status: number; body: string } | 'timeout'> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://127.0.0.1:${h2.port}`, { ca, servername: 'h.test' });
    session.on('error', () => undefined);
    const req = session.request({ ':path': path, ':authority': 'h.test' });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('error', () => undefined);
    const timer = setTimeout(() => {
      session.destroy();
      resolve('timeout');
    }, timeoutMs);
    req.on('close', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, body });
    });
    req.end();
  });
}

describe('a Node listener that never answers, over HTTP/1.1', () => {
  it('is answered 504 problem+json, logged so, and told as a client that left', async () => {
    const started = Date.now();
    const { text } = await rawRequest(
      h1.port,
      'GET /never HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      {
        waitMs: 5000,
      },
    );
    // 300 ms, within generous bounds (the client waited for ever).
    expect(Date.now() - started).toBeLessThan(4000);
    const answer = firstAnswer(text);
    expect(answer.status).toBe(504);
    expect(answer.fields['content-type']).toBe('application/problem+json');
    // The fields the listener stored before it stalled are not part of sluice's answer.
    expect(answer.fields['x-half-built']).toBeUndefined();
    expect(JSON.parse(answer.body)).toMatchObject({ status: 504, code: 'SLUICE_E_HANDLER_TIMEOUT' });
    const line = await accessLine(h1, '/never');
    expect(line).toMatchObject({
      status: 504,
      route: 'listener',
      error: 'SLUICE_E_HANDLER_TIMEOUT',
      error_message: 'the handler sent no answer within handler_timeout (300ms)',
    });
    await until(
      () => listenerSaw().get('/never')?.events.includes('req close'),
      'the listener to see its request close',
    );
    expect(listenerSaw().get('/never')!.events).toEqual(
      expect.arrayContaining(['req aborted', 'res close', 'req close']),
    );
  });

  it("drops the listener's late answer quietly: no throw, no second answer on the connection", async () => {
    // The late answer comes 400 ms after the request; the next request on the connection after it.
    const { text } = await rawRequest(
      h1.port,
      ['GET /late HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
      { gapMs: 700, waitMs: 5000 },
    );
    const answers = text.split(/(?=HTTP\/1\.1 )/);
    expect(answers.map((a) => firstAnswer(a).status)).toEqual([504, 200]);
    expect(firstAnswer(answers[1]!).body).toBe('ok\n');
    expect(text).not.toContain('late');
    const seen = listenerSaw().get('/late')!;
    expect(seen.lateThrew).toBeNull();
    expect(seen.events).toContain('late answer done');
    await until(() => seen.events.includes('write callback'), 'the late write callback');
    expect(await accessLine(h1, '/late')).toMatchObject({ status: 504, error: 'SLUICE_E_HANDLER_TIMEOUT' });
    expect(h1.accessLines().filter((l) => l.path === '/late')).toHaveLength(1);
    expect(complaints(h1)).toEqual([]);
  });

  it('leaves a stream that sent its head open past the deadline', async () => {
    const socket = net.connect(h1.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(900);
    socket.destroy();
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    // A tick every 50 ms: well past the 300 ms deadline.
    expect(text.split('data: tick').length - 1).toBeGreaterThan(8);
    expect(await accessLine(h1, '/events')).toMatchObject({ status: 499 });
  });

  it('postpones the deadline while the request body is still arriving', async () => {
    const parts = ['POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\nConnection: close\r\n\r\n'];
    for (let i = 0; i < 8; i++) parts.push('x');
    // 8 bytes 150 ms apart: 1.05 s of upload against a deadline of 300 ms.
    const { text } = await rawRequest(h1.port, parts, { gapMs: 150, waitMs: 5000 });
    expect(firstAnswer(text)).toMatchObject({ status: 200, body: 'got 8\n' });
  });

  it('does not time an Upgrade handshake, which a listener may take over on the raw socket', async () => {
    const { text } = await rawRequest(
      h1.port,
      'GET /never-upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      { waitMs: 900 },
    );
    expect(text).toBe('');
  });

  it('never answers for the handler with handler_timeout: 0s', async () => {
    const { text } = await rawRequest(h1.port, 'GET /untimed/never HTTP/1.1\r\nHost: x\r\n\r\n', {
      waitMs: 900,
    });
    expect(text).toBe('');
  });
});

describe('a fetch handler that never answers, over HTTP/1.1', () => {
  it('is answered 504, and its request.signal aborts with a TimeoutError', async () => {
    const { text } = await rawRequest(
      h1.port,
      'GET /f/never HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      {
        waitMs: 5000,
      },
    );
    expect(firstAnswer(text).status).toBe(504);
    expect(await accessLine(h1, '/f/never')).toMatchObject({
      status: 504,
      error: 'SLUICE_E_HANDLER_TIMEOUT',
    });
    expect(fetchSaw().get('/never')).toBe(
      'TimeoutError: the handler sent no answer within handler_timeout (300ms)',
    );
  });

  it('drops a Response returned late, and a rejection with the reason is no error line', async () => {
    for (const path of ['/f/late', '/f/rejects', '/f/slow-length']) {
      const { text } = await rawRequest(h1.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, { waitMs: 800 });
      expect(text.split('HTTP/1.1 ').length - 1).toBe(1);
      expect(firstAnswer(text).status).toBe(504);
      expect(await accessLine(h1, path)).toMatchObject({ status: 504, error: 'SLUICE_E_HANDLER_TIMEOUT' });
    }
    expect(h1.logs.some((l) => l.level === 'debug' && l.path === '/f/rejects')).toBe(true);
    expect(complaints(h1)).toEqual([]);
  });

  it('leaves a stream open past the deadline', async () => {
    const socket = net.connect(h1.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.write('GET /f/events HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(900);
    socket.destroy();
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    expect(text.split('data: tick').length - 1).toBeGreaterThan(8);
  });

  // Node sends a head with the first body bytes: the client of a stream with none got nothing,
  // and no 504 either (the head counted as sent).
  it('sends the head of a stream that has no chunk yet, and leaves it open past the deadline', async () => {
    const { text, closed } = await rawRequest(h1.port, 'GET /f/silent HTTP/1.1\r\nHost: x\r\n\r\n', {
      waitMs: 900,
    });
    expect(closed).toBe(false);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n$/);
    expect(await accessLine(h1, '/f/silent')).toMatchObject({ status: 499 });
  });
});

describe('handlers that never answer, over HTTP/2', () => {
  it('are answered 504 on their stream, a late answer going nowhere', async () => {
    for (const path of ['/never', '/f/never', '/late', '/f/late']) {
      const answer = await h2Get(path);
      expect(answer).toMatchObject({ status: 504 });
      expect(JSON.parse((answer as { body: string }).body)).toMatchObject({
        code: 'SLUICE_E_HANDLER_TIMEOUT',
      });
      expect(await accessLine(h2, path)).toMatchObject({ status: 504, error: 'SLUICE_E_HANDLER_TIMEOUT' });
    }
    await until(
      () => listenerSaw().get('/late')?.events.includes('late answer done'),
      'the late answer over HTTP/2',
    );
    expect(listenerSaw().get('/late')!.lateThrew).toBeNull();
    expect(h2.accessLines().filter((l) => l.path === '/late')).toHaveLength(1);
    // And a stream with its head sent is not timed.
    const events = await h2Get('/f/events', 900);
    expect(events).toBe('timeout');
    await sleep(100);
    expect(complaints(h2)).toEqual([]);
  });

  it('postpone the deadline while the request body is still arriving', async () => {
    const session = http2.connect(`https://127.0.0.1:${h2.port}`, { ca, servername: 'h.test' });
    session.on('error', () => undefined);
    const req = session.request({ ':path': '/upload', ':method': 'POST', ':authority': 'h.test' });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    const closed = new Promise((resolve) => req.on('close', resolve));
    for (let i = 0; i < 8; i++) {
      req.write('x');
      await sleep(150);
    }
    req.end();
    await closed;
    session.close();
    expect({ status, body }).toEqual({ status: 200, body: 'got 8\n' });
  });
});
