/**
 * What handlers answer, as the client gets it: fields HTTP/2 forbids, answers cut short, clients
 * that leave, over HTTP/2 (TLS) and HTTP/1.1.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tappedSession } from '../helpers/h2-frames.js';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let leaf: CertFiles;
let ca: Buffer;
/** The same routes on plain HTTP/1.1 (`h1`) and on TLS with HTTP/2 (`h2`). */
let h1: TestSluice;
let h2: TestSluice;
/** An upstream for /f/relay: Node's server answers with `Connection` and `Keep-Alive`, chunked. */
let upstream: http.Server;
let relay: string;
/** What the upstream's /gzip answers, before its gzip encoding. */
const GZIPPED_TEXT = 'hello world, '.repeat(88);
/** Requests the upstream holds unanswered (/f/held, relayed by the fetch app), and whether each closed. */
const held: { url: string; closed: boolean }[] = [];

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  leaf = root.leaf('h.test', { dns: ['h.test'], usage: 'server' });
  ca = readFileSync(root.cert);
  upstream = http.createServer((req, res) => {
    if (req.url === '/p/cut') {
      // Chunked, 100 KB, then the connection is gone with no last chunk.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(100 * 1024, 'x'), () => res.socket?.destroy());
      return;
    }
    if (req.url?.startsWith('/f/held')) {
      const request = { url: req.url, closed: false };
      held.push(request);
      res.on('close', () => {
        request.closed = true;
      });
      return;
    }
    if (req.url === '/gzip') {
      // Encoded, with the length of its encoded form (54 bytes for 1144).
      const body = gzipSync(GZIPPED_TEXT);
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': body.length });
      res.end(body);
      return;
    }
    res.write('relayed ');
    res.end('body\n');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  relay = `/f/relay?to=${encodeURIComponent(`${upstreamUrl}/`)}`;
  const routes = [
    { name: 'proxy', match: { path_prefix: '/p/' }, proxy: { url: upstreamUrl } },
    { name: 'fetch', match: { path_prefix: '/f/' }, handler: 'test/fixtures/handlers/edge-fetch-app.ts' },
    { name: 'listener', handler: 'test/fixtures/handlers/edge-listener-app.ts' },
  ];
  h1 = await startSluice({ servers: [{ listen: '127.0.0.1:0', routes }] });
  h2 = await startSluice({
    servers: [{ listen: '127.0.0.1:0', http2: true, tls: { cert: leaf.cert, key: leaf.key }, routes }],
  });
});

afterAll(async () => {
  await Promise.all([h1?.close(), h2?.close()]);
  upstream?.closeAllConnections();
  upstream?.close();
  pki.remove();
});

/** An HTTP/2 answer, and how its stream ended on the wire. */
interface H2Answer {
  readonly headers: http2.IncomingHttpHeaders;
  readonly body: string;
  /** END_STREAM, or RST_STREAM with its code (Node's client reads a NO_ERROR reset as an end). */
  readonly wire: { endStream: true } | { rstCode: number } | null;
}

/**
 * One HTTP/2 request to `port` (a GET, unless `fields` say otherwise); settles when the stream
 * closes, or after `timeoutMs`.
 */
function h2Get(
  path: string,
  timeoutMs = 3000,
  port = h2.port,
  fields: http2.OutgoingHttpHeaders = {},
): Promise<H2Answer | 'timeout'> {
  return new Promise((resolve) => {
    const tapped = tappedSession(port, ca, 'h.test');
    const req = tapped.session.request({ ':path': path, ':authority': 'h.test', ...fields });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      headers = h;
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('error', () => undefined);
    const timer = setTimeout(() => {
      tapped.session.destroy();
      resolve('timeout');
    }, timeoutMs);
    req.on('close', () => {
      clearTimeout(timer);
      tapped.session.close();
      resolve({ headers, body, wire: tapped.ending(req.id!) });
    });
    req.end();
  });
}

/** The access line of the request for `path`. */
function accessLine(sluice: TestSluice, path: string) {
  return until(
    () => sluice.logs.find((l) => l.msg === 'request' && l.path === path),
    `the access line of ${path}`,
  );
}

describe('connection-specific fields of a handler answer, over HTTP/2', () => {
  it.each([
    ['/te', 'te\n'],
    ['/keep-alive', 'keep-alive\n'],
    ['/upgrade', 'upgrade\n'],
    ['/named', 'named\n'],
    ['/f/keep-alive', 'x'],
    ['/f/hop-by-hop', 'hop\n'],
    ['/f/relay', 'relayed body\n'],
  ])('%s is answered without them', async (path, body) => {
    const answer = await h2Get(path === '/f/relay' ? relay : path);
    expect(answer).not.toBe('timeout');
    const a = answer as H2Answer;
    expect(a.headers[':status']).toBe(200);
    expect(a.body).toBe(body);
    expect(a.wire).toEqual({ endStream: true });
    for (const name of [
      'connection',
      'keep-alive',
      'proxy-connection',
      'transfer-encoding',
      'upgrade',
      'x-hop',
    ])
      expect(a.headers[name]).toBeUndefined();
    if (path === '/named' || path === '/f/hop-by-hop') expect(a.headers['x-kept']).toBe('yes');
  });
});

describe('a single-value field a handler gives twice, over HTTP/2', () => {
  // Node's HTTP/2 refuses such a head (a 500 before); HTTP/1.1 sends both values.
  it.each([
    ['/two-etags', 200, 'etag', '"b"', 'two\n'],
    ['/appended-types', 200, 'content-type', 'text/html', 'two\n'],
    ['/raw-locations', 302, 'location', '/b', ''],
  ])('%s is answered with its last value', async (path, status, name, value, body) => {
    const answer = await h2Get(path);
    expect(answer).not.toBe('timeout');
    const a = answer as H2Answer;
    expect(a.headers[':status']).toBe(status);
    expect(a.headers[name]).toBe(value);
    expect(a.body).toBe(body);
    expect(a.wire).toEqual({ endStream: true });
    if (path === '/raw-locations') expect(a.headers['set-cookie']).toEqual(['x=1', 'y=2']);
    expect((await accessLine(h2, path)).error).toBeUndefined();
  });

  it('is sent twice over HTTP/1.1', async () => {
    const res = await fetch(`${h1.url}/appended-types`);
    expect(res.headers.get('content-type')).toBe('text/plain, text/html');
  });
});

describe('a handler answer Node refuses to send, over HTTP/2', () => {
  it('is a 500 at once, never a stream left open', async () => {
    const answer = await h2Get('/pseudo');
    expect(answer).not.toBe('timeout');
    expect((answer as H2Answer).headers[':status']).toBe(500);
    expect(await accessLine(h2, '/pseudo')).toMatchObject({
      status: 500,
      error: 'SLUICE_E_HANDLER_ERROR',
    });
  });
});

describe('an answer cut short, over HTTP/2', () => {
  // RST_STREAM(NO_ERROR) without END_STREAM read as a complete answer: curl exited 0, Node's client
  // emitted 'end'.
  it('resets the stream with INTERNAL_ERROR when a fetch body fails after the head', async () => {
    const answer = (await h2Get('/f/break')) as H2Answer;
    expect(answer.headers[':status']).toBe(200);
    expect(answer.body).toBe('chunk 0\nchunk 1\nchunk 2\n');
    expect(answer.wire).toEqual({ rstCode: http2.constants.NGHTTP2_INTERNAL_ERROR });
    expect(await accessLine(h2, '/f/break')).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
  });

  it('resets the stream with INTERNAL_ERROR when the upstream connection breaks part-way', async () => {
    const answer = (await h2Get('/p/cut')) as H2Answer;
    expect(answer.headers[':status']).toBe(200);
    expect(answer.body.length).toBeGreaterThan(0);
    expect(answer.body.length).toBeLessThanOrEqual(100 * 1024);
    expect(answer.wire).toEqual({ rstCode: http2.constants.NGHTTP2_INTERNAL_ERROR });
  });

  it('resets the stream with CANCEL when shutdown_timeout cuts it', async () => {
    const own = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          routes: [{ handler: 'test/fixtures/handlers/edge-fetch-app.ts' }],
        },
      ],
    });
    const tapped = tappedSession(own.port, ca, 'h.test');
    const req = tapped.session.request({ ':path': '/f/events', ':authority': 'h.test' });
    req.on('error', () => undefined);
    const closed = new Promise((resolve) => req.once('close', resolve));
    await new Promise((resolve) => req.once('data', resolve));
    req.resume();
    req.end();
    await own.instance.close(200);
    await closed;
    tapped.session.destroy();
    expect(tapped.ending(req.id!)).toEqual({ rstCode: http2.constants.NGHTTP2_CANCEL });
  });
});

describe('a client that leaves a Node listener, over HTTP/2', () => {
  // Node's compat response emits 'finish' for a stream the client reset: it was logged 200.
  it('is logged 499 when it resets the stream before the answer', async () => {
    const tapped = tappedSession(h2.port, ca, 'h.test');
    const req = tapped.session.request({ ':path': '/never', ':authority': 'h.test' });
    req.on('error', () => undefined);
    req.end();
    await new Promise((r) => setTimeout(r, 100));
    req.close(http2.constants.NGHTTP2_CANCEL);
    expect(await accessLine(h2, '/never')).toMatchObject({ route: 'listener', status: 499 });
    tapped.session.close();
  });
});

describe('the request a Node listener gets, over HTTP/2', () => {
  // Node's HTTP/2 headers have `:authority` only: Express's req.hostname was undefined.
  it('has a host header, from :authority', async () => {
    const answer = (await h2Get('/host')) as H2Answer;
    expect(JSON.parse(answer.body)).toEqual({ host: 'h.test', authority: 'h.test' });
  });
});

/** Writes `request` to the HTTP/1.1 listener; resolves with what came back and whether the server closed. */
function h1Raw(request: string, waitMs = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(h1.port, '127.0.0.1');
    let text = '';
    let settle: NodeJS.Timeout | null = null;
    const done = (closed: boolean) => {
      clearTimeout(timer);
      if (settle !== null) clearTimeout(settle);
      socket.destroy();
      resolve({ text, closed });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      // A whole answer on a connection kept open: still open 300 ms after it is, it stays open
      // (one that is to close is closed right after its answer).
      if (settle === null && isComplete(text)) settle = setTimeout(() => done(false), 300);
    });
    socket.on('error', () => undefined);
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('end', () => done(true));
    socket.write(request);
  });
}

/** Whether `text` holds a whole HTTP/1.1 answer: its Content-Length read, or its last chunk. */
function isComplete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  if (length !== null) return Buffer.byteLength(text.slice(end + 4), 'latin1') >= Number(length[1]);
  return /\r\ntransfer-encoding: *chunked/i.test(text.slice(0, end)) && text.endsWith('\r\n0\r\n\r\n');
}

/** The header fields of a raw HTTP/1.1 answer, lower-cased names. */
function fieldsOf(text: string): Record<string, string> {
  const head = text.split('\r\n\r\n')[0]!.split('\r\n').slice(1);
  return Object.fromEntries(
    head.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

describe('hop-by-hop fields of a fetch answer, over HTTP/1.1', () => {
  it("leave the connection to the client's Connection: close", async () => {
    const { text, closed } = await h1Raw(
      'GET /f/keep-alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(fieldsOf(text)).toMatchObject({ connection: 'close' });
    expect(fieldsOf(text)['keep-alive']).toBeUndefined();
    expect(closed).toBe(true);
  });

  it('are not copied: Node frames the answer and sets its own Connection', async () => {
    const { text, closed } = await h1Raw('GET /f/hop-by-hop HTTP/1.1\r\nHost: x\r\n\r\n');
    const fields = fieldsOf(text);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(fields).toMatchObject({ connection: 'keep-alive', 'x-kept': 'yes' });
    for (const name of ['x-hop', 'proxy-connection', 'upgrade']) expect(fields[name]).toBeUndefined();
    expect(fields['keep-alive']).not.toBe('timeout=5');
    // The app's `Connection: close` is not the connection's: it stays open for the next request.
    expect(closed).toBe(false);
  });

  it("are not copied from a relayed upstream's answer", async () => {
    const { text } = await h1Raw(`GET ${relay} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const fields = fieldsOf(text);
    expect(fields).toMatchObject({ connection: 'close' });
    expect(fields['keep-alive']).toBeUndefined();
    expect(text).toMatch(/relayed body\n/);
  });
});

/** One answer of a raw HTTP/1.1 exchange, read by its own framing. */
interface H1Answer {
  readonly status: number;
  readonly fields: Record<string, string>;
  readonly body: string;
}

/**
 * The answers in `text`, each read strictly by its framing (Content-Length, else chunked), as a
 * keep-alive client reads them; `rest` is what follows the last one that could be read whole.
 */
function answersOf(text: string): { answers: H1Answer[]; rest: string } {
  const answers: H1Answer[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(rest);
    if (end === -1 || status === null) return { answers, rest };
    const fields = fieldsOf(rest);
    let after = rest.slice(end + 4);
    let body = '';
    if (fields['content-length'] !== undefined) {
      const length = Number(fields['content-length']);
      if (after.length < length) return { answers, rest };
      body = after.slice(0, length);
      after = after.slice(length);
    } else if (fields['transfer-encoding'] === 'chunked') {
      for (;;) {
        const line = /^([0-9a-f]+)\r\n/i.exec(after);
        if (line === null) return { answers, rest };
        const size = Number.parseInt(line[1]!, 16);
        const chunk = after.slice(line[0].length, line[0].length + size);
        if (chunk.length < size || after.slice(line[0].length + size, line[0].length + size + 2) !== '\r\n')
          return { answers, rest };
        after = after.slice(line[0].length + size + 2);
        if (size === 0) break;
        body += chunk;
      }
    }
    answers.push({ status: Number(status[1]), fields, body });
    rest = after;
  }
}

describe('the Content-Length of a fetch answer, over HTTP/1.1', () => {
  /** GET `path`, then GET /f/keep-alive, on one connection (the second closes it). */
  async function twoOnOne(path: string): Promise<{ answers: H1Answer[]; rest: string }> {
    const { text } = await h1Raw(
      `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\nGET /f/keep-alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    return answersOf(text);
  }

  // Sent as declared, the 12 bytes after `content-length: 3` were read by a keep-alive client as the
  // start of the next answer (HPE_INVALID_CONSTANT); 3 after `content-length: 10` left it waiting.
  it.each([
    ['/f/length/long', 'abcdefghijkl'],
    ['/f/length/short', 'abc'],
  ])(
    'of a body given whole (%s) is its real length; the connection serves the next request',
    async (path, body) => {
      const { answers, rest } = await twoOnOne(path);
      expect(answers.map((a) => a.status)).toEqual([200, 200]);
      expect(answers[0]!.body).toBe(body);
      expect(answers[0]!.fields['content-length']).toBe(String(body.length));
      expect(answers[1]!.body).toBe('x');
      expect(rest).toBe('');
    },
  );

  it('of a stream is kept when the stream has that length', async () => {
    const { answers, rest } = await twoOnOne('/f/length/stream/6');
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers[0]!.fields['content-length']).toBe('6');
    expect(answers[0]!.body).toBe('abcdef');
    expect(rest).toBe('');
  });

  // A stream's length is known only once it has ended: the answer was started with the declared
  // one, and is broken rather than let the client take a wrong body (or the next answer) for it.
  // What was written before the failure goes out (6 of 8 bytes, still short of the length).
  it.each([
    ['4', 'longer than the 4 bytes', 'abc'],
    ['8', 'ended after 6 of the 8 bytes', 'abcdef'],
  ])(
    'of a stream that does not have the declared %s bytes breaks the answer',
    async (declared, message, sent) => {
      const path = `/f/length/stream/${declared}`;
      const { text, closed } = await h1Raw(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(closed).toBe(true);
      const { answers, rest } = answersOf(text);
      // Never a whole answer: the body stops short of its length.
      expect(answers).toEqual([]);
      expect(fieldsOf(rest)['content-length']).toBe(declared);
      expect(rest.slice(rest.indexOf('\r\n\r\n') + 4)).toBe(sent);
      const line = await accessLine(h1, path);
      expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
      expect(line.error_message).toContain(message);
    },
  );

  // undici's fetch() decodes the body and keeps the upstream's content-encoding and content-length
  // (54, for 1144 bytes of text): relayed as they were, the client read 54 bytes of them.
  it("of a relayed fetch() body that undici decoded is not the upstream's", async () => {
    const upstreamUrl = new URL(decodeURIComponent(relay.slice(relay.indexOf('=') + 1)));
    const { answers, rest } = await twoOnOne(
      `/f/relay?to=${encodeURIComponent(new URL('/gzip', upstreamUrl).href)}`,
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers[0]!.body).toBe(GZIPPED_TEXT);
    expect(answers[0]!.fields['content-length']).not.toBe('54');
    expect(rest).toBe('');
  });

  it('of a null body is 0; a HEAD, 204 or 304 answer keeps the one declared', async () => {
    const [nullBody] = (await twoOnOne('/f/length/null')).answers;
    expect(nullBody).toMatchObject({ status: 200, body: '' });
    expect(nullBody!.fields['content-length']).toBe('0');
    const { text } = await h1Raw('HEAD /f/length/long HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(fieldsOf(text)['content-length']).toBe('3');
    const [noContent] = (await twoOnOne('/f/length/no-content')).answers;
    expect(noContent!.status).toBe(204);
    expect(noContent!.fields['content-length']).toBe('5');
  });
});

describe('the Content-Length of a fetch answer, over HTTP/2', () => {
  // RFC 9110 8.6 forbids it; beside END_STREAM on the head, curl and Node's client reset the stream.
  it('of a 204 is dropped, so the client takes the answer whole', async () => {
    const answer = (await h2Get('/f/length/no-content')) as H2Answer;
    expect(answer.headers[':status']).toBe(204);
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.wire).toEqual({ endStream: true });
  });

  it('is the real one of a body given whole; a stream without the declared length resets', async () => {
    const whole = (await h2Get('/f/length/long')) as H2Answer;
    expect(whole.headers['content-length']).toBe('12');
    expect(whole.body).toBe('abcdefghijkl');
    expect(whole.wire).toEqual({ endStream: true });
    const longer = (await h2Get('/f/length/stream/4')) as H2Answer;
    expect(longer.headers['content-length']).toBe('4');
    expect(longer.body).toBe('abc');
    expect(longer.wire).toEqual({ rstCode: http2.constants.NGHTTP2_INTERNAL_ERROR });
  });
});

describe('a Node listener that throws after its answer is complete', () => {
  // The log said "handler failed; answered 500" while the client had its 200, and the connection
  // was broken under the answer: of 8 MB ended, what was still queued never went out.
  it('keeps the answer whole and logs what happened, over HTTP/1.1', async () => {
    const small = await h1Raw('GET /end-then-throw HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answersOf(small.text)).toMatchObject({ answers: [{ status: 200, body: 'ok\n' }], rest: '' });
    expect(small.closed).toBe(false);
    const line = await accessLine(h1, '/end-then-throw');
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    const logged = h1.logs.filter((l) => l.level === 'error' && l.request_id === line.request_id);
    expect(logged.map((l) => l.msg)).toEqual([
      'handler threw after its answer was complete; the answer stands',
    ]);

    // Rejected once the answer is out and logged: said all the same (it was not logged at all).
    const late = await h1Raw('GET /end-then-reject HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answersOf(late.text).answers).toMatchObject([{ status: 200, body: 'ok\n' }]);
    const lateLine = await accessLine(h1, '/end-then-reject');
    const until = Date.now() + 3000;
    const lateErrors = () =>
      h1.logs.filter((l) => l.level === 'error' && l.request_id === lateLine.request_id).map((l) => l.msg);
    while (lateErrors().length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    expect(lateErrors()).toEqual(['handler threw after its answer was complete; the answer stands']);

    const big = await h1Raw(
      'GET /end-big-then-throw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      10_000,
    );
    const [answer] = answersOf(big.text).answers;
    expect(answer?.status).toBe(200);
    expect(answer?.body.length).toBe(8 * 1024 * 1024);
  });
});

describe('bytes_out of a handler answer cut short', () => {
  /** An HTTP/1.1 GET on `port` that resolves once `bytes` have come back; returns its socket. */
  function h1Stream(
    port: number,
    path: string,
    bytes: number,
  ): Promise<{ socket: net.Socket; received: () => number }> {
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let received = 0;
      socket.on('error', () => undefined);
      socket.on('data', (d: Buffer) => {
        const before = received;
        received += d.length;
        if (before < bytes && received >= bytes) resolve({ socket, received: () => received });
      });
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
  }

  it('counts the body bytes sent before a fetch stream failed, over HTTP/1.1 and HTTP/2', async () => {
    // Three chunks of 8 bytes, then the error.
    await h1Raw('GET /f/break HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await accessLine(h1, '/f/break')).toMatchObject({ status: 200, bytes_out: 24 });
    await h2Get('/f/break');
    expect(await accessLine(h2, '/f/break')).toMatchObject({ status: 200, bytes_out: 24 });
  });

  it('counts what a Node listener sent before it failed', async () => {
    const { text } = await h1Raw('GET /write-then-reject HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(text).toMatch(/part one\n/);
    const line = await accessLine(h1, '/write-then-reject');
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(line.bytes_out).toBe(Buffer.byteLength(text, 'latin1'));
  });

  // Thrown in the tick that wrote: the connection was cut while Node still held the head and the
  // part (it uncorks a tick later), so the client got nothing (curl: exit 52, empty reply) while
  // the access line said 200 and counted 167 bytes.
  it('sends what a Node listener wrote before it threw in the same tick, then cuts the answer', async () => {
    const { text, closed } = await h1Raw('GET /write-then-throw HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(fieldsOf(text)['transfer-encoding']).toBe('chunked');
    // The part, and no last chunk: a client sees the answer cut short, never a whole one.
    expect(text.endsWith('\r\n\r\n9\r\npart one\n\r\n')).toBe(true);
    const line = await accessLine(h1, '/write-then-throw');
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(line.bytes_out).toBe(Buffer.byteLength(text, 'latin1'));
    // HTTP/2 sent the head and the part, then reset the stream: still so.
    const answer = (await h2Get('/write-then-throw')) as H2Answer;
    expect(answer.headers[':status']).toBe(200);
    expect(answer.body).toBe('part one\n');
    expect(answer.wire).toEqual({ rstCode: http2.constants.NGHTTP2_INTERNAL_ERROR });
    expect(await accessLine(h2, '/write-then-throw')).toMatchObject({ status: 200, bytes_out: 9 });
  });

  it('sends a part larger than the socket takes at once whole before the cut', async () => {
    const { text, closed } = await h1Raw('GET /write-big-then-throw HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    expect(body).toBe(`400000\r\n${'x'.repeat(4 * 1024 * 1024)}\r\n`);
    const line = await accessLine(h1, '/write-big-then-throw');
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(line.bytes_out).toBe(Buffer.byteLength(text, 'latin1'));
  });

  // While the written part drains to a client reading late, an end() the listener still makes
  // must not join it: it went out before the close, and the cut answer ended with a last chunk,
  // a whole-looking 200.
  it('drops what a Node listener writes after it threw while the written part drains', async () => {
    const path = '/write-huge-then-throw-then-end';
    const { bytes, tail } = await new Promise<{ bytes: number; tail: string }>((resolve, reject) => {
      const socket = net.connect(h1.port, '127.0.0.1');
      // 32 MB is more than the kernel takes at once: read from 400 ms on, after the end() at 100 ms.
      socket.pause();
      setTimeout(() => socket.resume(), 400);
      let count = 0;
      let last = Buffer.alloc(0);
      socket.on('data', (d: Buffer) => {
        count += d.length;
        last = Buffer.concat([last, d]).subarray(-64);
      });
      socket.on('end', () => resolve({ bytes: count, tail: last.toString('latin1') }));
      socket.on('error', reject);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    // The part, then the close: no TAIL, no last chunk.
    expect(tail.endsWith(`${'x'.repeat(32)}\r\n`)).toBe(true);
    const line = await accessLine(h1, path);
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(bytes).toBeGreaterThan(32 * 1024 * 1024);
  });

  it("counts a Node listener's 500 once, over HTTP/1.1 and HTTP/2", async () => {
    const { text } = await h1Raw('GET /throw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const length = Number(fieldsOf(text)['content-length']);
    expect(length).toBeGreaterThan(0);
    expect(await accessLine(h1, '/throw')).toMatchObject({ status: 500, bytes_out: length });
    const answer = (await h2Get('/throw')) as H2Answer;
    expect(answer.headers[':status']).toBe(500);
    expect(await accessLine(h2, '/throw')).toMatchObject({
      status: 500,
      bytes_out: Buffer.byteLength(answer.body),
    });
  });

  it('counts what a Node listener sent before its client left (499)', async () => {
    const { socket, received } = await h1Stream(h1.port, '/events', 200);
    socket.destroy();
    const line = await accessLine(h1, '/events');
    expect(line).toMatchObject({ route: 'listener', status: 499 });
    // Head included, as for a whole answer; at least what the client had.
    expect(line.bytes_out).toBeGreaterThanOrEqual(received());
  });

  it('counts what went out before shutdown_timeout cut a stream, fetch style or Node listener', async () => {
    const own = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            {
              name: 'fetch',
              match: { path_prefix: '/f/' },
              handler: 'test/fixtures/handlers/edge-fetch-app.ts',
            },
            { name: 'listener', handler: 'test/fixtures/handlers/edge-listener-app.ts' },
          ],
        },
      ],
    });
    const fetchStream = await h1Stream(own.port, '/f/events', 200);
    const listenerStream = await h1Stream(own.port, '/events', 200);
    await own.instance.close(200);
    fetchStream.socket.destroy();
    listenerStream.socket.destroy();
    const fetchLine = await accessLine(own, '/f/events');
    expect(fetchLine).toMatchObject({ status: 499, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' });
    // Body bytes: whole events of 18 bytes.
    expect(fetchLine.bytes_out).toBeGreaterThan(0);
    expect(Number(fetchLine.bytes_out) % 18).toBe(0);
    const listenerLine = await accessLine(own, '/events');
    expect(listenerLine).toMatchObject({ status: 499, error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT' });
    expect(listenerLine.bytes_out).toBeGreaterThanOrEqual(listenerStream.received());
  });
});

describe('the head of a fetch answer whose body has nothing yet, over HTTP/1.1', () => {
  // Node sends a head with the first body bytes: an event stream's client waited for its first
  // event, and got nothing at all from one that never came (nor a 504: the head counted as sent).
  it('goes out at once, and the stream stays open', async () => {
    const socket = net.connect(h1.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', () => undefined);
    socket.write('GET /f/silent HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => text.includes('\r\n\r\n') || undefined, 'the head', 5000);
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(fieldsOf(text)).toMatchObject({
      'content-type': 'text/event-stream',
      'transfer-encoding': 'chunked',
    });
    expect(text.slice(text.indexOf('\r\n\r\n') + 4)).toBe('');
    expect(await accessLine(h1, '/f/silent')).toMatchObject({ status: 499 });
  });
});

describe('a fetch stream that produces whenever asked, to a client that does not read', () => {
  // Before its head, 64 chunks were read whatever their size: 64 MiB of 1 MiB chunks per such
  // client, held in the worker.
  it('is read only a little ahead of what the connection takes', async () => {
    const socket = net.connect(h1.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.pause();
    socket.write('GET /f/pulled HTTP/1.1\r\nHost: x\r\n\r\n');
    const count = async () => Number(await (await fetch(`${h1.url}/f/pulled/count`)).text());
    try {
      await until(async () => ((await count()) > 0 ? true : undefined), 'the stream read', 5000);
      // The kernel's buffers both ways take a few MiB of it; then nothing more is read.
      await new Promise((r) => setTimeout(r, 500));
      const pulled = await count();
      await new Promise((r) => setTimeout(r, 300));
      expect(await count()).toBe(pulled);
      expect(pulled).toBeLessThan(32);
    } finally {
      socket.destroy();
    }
  });
});

describe('a client that leaves a fetch app reading its body, over HTTP/2', () => {
  // The body's read failed before the stream's close was seen: logged 500 with a stack, and
  // counted as a server error, for an answer no client was there to take (HTTP/1.1: 499).
  it('is logged 499', async () => {
    const logged = h2.logs.length;
    const tapped = tappedSession(h2.port, ca, 'h.test');
    const req = tapped.session.request({ ':path': '/f/sink', ':method': 'PUT', ':authority': 'h.test' });
    req.on('error', () => undefined);
    tapped.session.on('error', () => undefined);
    const chunk = Buffer.alloc(16 * 1024, 'u');
    for (let i = 0; i < 5; i++) {
      req.write(chunk);
      await new Promise((r) => setTimeout(r, 10));
    }
    tapped.session.destroy();
    expect(await accessLine(h2, '/f/sink')).toMatchObject({ status: 499, bytes_out: 0 });
    // Nor a handler error with its stack.
    expect(h2.logs.slice(logged).filter((l) => l.level === 'error')).toEqual([]);
  });
});

describe('a fetch body that fails at its first read', () => {
  // No byte of the answer had gone out: the client got an empty reply (curl: exit 52) while the
  // access line said 200.
  it('is answered 500 over HTTP/1.1, on a connection that serves the next request', async () => {
    const { text } = await h1Raw(
      'GET /f/fail-first HTTP/1.1\r\nHost: x\r\n\r\nGET /f/whole HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    const { answers, rest } = answersOf(text);
    expect(answers.map((a) => a.status)).toEqual([500, 200]);
    expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'SLUICE_E_HANDLER_ERROR' });
    expect(rest).toBe('');
    expect(await accessLine(h1, '/f/fail-first')).toMatchObject({
      status: 500,
      error: 'SLUICE_E_HANDLER_ERROR',
      error_message: 'the stream failed at once',
    });
  });

  it('is answered 500 over HTTP/2', async () => {
    const answer = (await h2Get('/f/fail-first')) as H2Answer;
    expect(answer.headers[':status']).toBe(500);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'SLUICE_E_HANDLER_ERROR' });
    expect(answer.wire).toEqual({ endStream: true });
  });
});

describe('a fetch body given whole', () => {
  // It went chunked, with no length.
  it('goes with its length, over HTTP/1.1', async () => {
    const { text } = await h1Raw('GET /f/whole HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const fields = fieldsOf(text);
    expect(fields['content-length']).toBe('11');
    expect(fields['transfer-encoding']).toBeUndefined();
    expect(answersOf(text).answers).toMatchObject([{ status: 200, body: 'whole body\n' }]);
  });
});

describe('a request a fetch handler cannot be given', () => {
  /** The error-level log lines of the request logged with `line`. */
  const errorsOf = (sluice: TestSluice, line: Record<string, unknown>) =>
    sluice.logs.filter((l) => l.level === 'error' && l.request_id === line.request_id);

  // Hosts sluice takes that the WHATWG URL parser refuses: `new Request` threw, a 500 with a stack
  // in the log (a handler error, counted as one) for a request the app never saw.
  // (Newer URL parsers take `xn--zz` and `xn--a`: where this one does, the app is given them.)
  const hosts = ['1.2.3.256', 'a.1', 'foo.09', '999999999999', 'xn--zz', 'xn--a'].filter(
    (host) => !URL.canParse(`http://${host}/`),
  );

  it.each(hosts.map((host, i) => [host, i]))(
    "is refused 400 for Host %s over HTTP/1.1, as the client's fault",
    async (host, i) => {
      const path = `/f/host-${i}`;
      const { text } = await h1Raw(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      const [answer] = answersOf(text).answers;
      expect(answer?.status).toBe(400);
      expect(JSON.parse(answer!.body)).toMatchObject({ code: 'SLUICE_E_CLIENT_BAD_REQUEST' });
      const line = await accessLine(h1, path);
      expect(line).toMatchObject({ status: 400, error: 'SLUICE_E_CLIENT_BAD_REQUEST', route: 'fetch' });
      expect(errorsOf(h1, line)).toEqual([]);
      // The host passes sluice's own checks: a Node listener is given the request.
      const listener = await h1Raw(`GET /host HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(answersOf(listener.text).answers[0]?.status).toBe(200);
    },
  );

  it('is refused 400 for such an :authority over HTTP/2', async () => {
    const answer = (await h2Get('/f/authority', 3000, h2.port, { ':authority': '1.2.3.256' })) as H2Answer;
    expect(answer.headers[':status']).toBe(400);
    const line = await accessLine(h2, '/f/authority');
    expect(line).toMatchObject({ status: 400, error: 'SLUICE_E_CLIENT_BAD_REQUEST' });
    expect(errorsOf(h2, line)).toEqual([]);
  });

  // `new Request` throws for CONNECT, TRACE and TRACK in any case: a 500 with a stack. TRACE is
  // refused before routing only as sent upper-case; HTTP/2 carries the others to a route.
  it.each(['TRACK', 'track', 'trace', 'connect'])(
    'is refused 405 for the method %s over HTTP/2',
    async (method) => {
      const path = `/f/method-${method}`;
      const answer = (await h2Get(path, 3000, h2.port, { ':method': method })) as H2Answer;
      expect(answer.headers[':status']).toBe(405);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'SLUICE_E_CLIENT_METHOD_NOT_ALLOWED' });
      const line = await accessLine(h2, path);
      expect(line).toMatchObject({
        status: 405,
        error: 'SLUICE_E_CLIENT_METHOD_NOT_ALLOWED',
        route: 'fetch',
      });
      expect(errorsOf(h2, line)).toEqual([]);
    },
  );
});

describe("copies of a fetch handler's request", () => {
  // Only request.signal itself aborted: a relay through a clone or a copy (or fetch(request),
  // which copies it) kept its upstream request running after the client left.
  it.each(['clone', 'copy', 'request'])(
    'abort when the client leaves: fetch() through a %s stops its upstream request',
    async (via) => {
      const upstreamHost = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
      const socket = net.connect(h1.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`GET /f/held?via=${via} HTTP/1.1\r\nHost: ${upstreamHost}\r\n\r\n`);
      const request = await until(
        () => held.find((r) => r.url === `/f/held?via=${via}`),
        'the relayed request upstream',
      );
      expect(request.closed).toBe(false);
      socket.destroy();
      await until(() => request.closed || undefined, 'the relayed request aborted', 5000);
    },
  );
});
