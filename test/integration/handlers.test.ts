/** Handler routes in-process: both module styles, errors as 500s with ids, limits, close(). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceInstance } from '../../src/runtime/instance.js';
import { http } from '../helpers/http.js';
import { until } from '../helpers/runtime.js';
import { memoryLoggers, resolve, startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki } from '../helpers/tls-pki.js';

describe('a handler module that cannot load', () => {
  // The error said what and where, and the stack of the module's own error went nowhere.
  it('fails the start with its stack in the log at debug', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-load-fail-'));
    try {
      const module = join(dir, 'throws.mjs');
      writeFileSync(module, "export default () => undefined;\nthrow new Error('top-level throw');\n");
      const { loggers, logs } = memoryLoggers();
      const instance = new SluiceInstance(
        resolve({ servers: [{ listen: '127.0.0.1:0', routes: [{ handler: module }] }] }),
        { loggers },
      );
      await expect(instance.start()).rejects.toMatchObject({ code: 'SLUICE_E_HANDLER_LOAD' });
      await instance.close(100).catch(() => undefined);
      const line = logs.find((l) => l.msg === 'handler module failed to load');
      expect(line).toMatchObject({ level: 'debug', module });
      const stack = (line?.err as { stack?: string } | undefined)?.stack ?? '';
      expect(stack).toContain('caused by: Error: top-level throw');
      expect(stack).toContain('throws.mjs:2:');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('handler routes', () => {
  let sluice: TestSluice;

  beforeAll(async () => {
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '1kb' },
          routes: [
            { name: 'fetch', match: { path_prefix: '/f/' }, handler: 'test/fixtures/handlers/fetch-app.ts' },
            { name: 'listener', handler: 'test/fixtures/handlers/listener-app.ts' },
          ],
        },
      ],
    });
  });

  afterAll(() => sluice.close());

  it('serves a fetch-style app: method, URL with host, body, headers both ways', async () => {
    const res = await http(`${sluice.url}/f/echo?q=1`, {
      method: 'POST',
      body: 'hello',
      headers: { host: 'app.test', 'user-agent': 'tester' },
    });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      method: 'POST',
      url: 'http://app.test/f/echo?q=1',
      body: 'hello',
      agent: 'tester',
    });
  });

  it('keeps every Set-Cookie and streams bodies', async () => {
    const cookies = await http(`${sluice.url}/f/cookies`);
    expect(cookies.status).toBe(201);
    expect(cookies.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
    const stream = await http(`${sluice.url}/f/stream`);
    expect(stream.body).toBe('chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n');
  });

  it('serves a Node listener', async () => {
    const res = await http(`${sluice.url}/anything`, { method: 'PUT', body: 'x' });
    expect(res.json()).toEqual({ method: 'PUT', url: '/anything', body: 'x' });
  });

  it.each(['/f/throw', '/f/not-a-response', '/throw', '/reject'])(
    'answers 500 with an error id and a log line with the stack when %s fails',
    async (path) => {
      const res = await http(`${sluice.url}${path}`);
      expect(res.status).toBe(500);
      const doc = res.json() as { code: string; request_id: string };
      expect(doc.code).toBe('SLUICE_E_HANDLER_ERROR');
      expect(res.headers['x-sluice-error-id']).toBe(doc.request_id);
      const logged = sluice.logs.find(
        (l) => l.msg === 'handler failed; answered 500' && l.request_id === doc.request_id,
      );
      expect(logged).toBeDefined();
      expect(String((logged!.err as { stack?: string }).stack)).toMatch(/exploded|Response|rejected/);
      // And the next request is served.
      expect((await http(`${sluice.url}/f/echo`, { method: 'POST', body: 'ok' })).status).toBe(200);
    },
  );

  // They said "Cannot read properties of undefined (reading 'forEach')" and "Invalid state:
  // ReadableStream is locked".
  it.each([
    ['/f/not-a-response', 'fetch() must return a Response, got a string'],
    [
      '/f/plain-object',
      'fetch() must return a Response, got an Object (a plain object: wrap it, new Response(body, { status, headers }))',
    ],
    [
      '/f/used-body',
      'fetch() returned a Response whose body was already used (read, or held by a reader): return a new Response, or response.clone() before reading it',
    ],
    [
      '/f/locked-body',
      'fetch() returned a Response whose body was already used (read, or held by a reader): return a new Response, or response.clone() before reading it',
    ],
  ])('says what is wrong with what %s returned, and answers 500', async (path, message) => {
    const res = await http(`${sluice.url}${path}`);
    expect(res.status).toBe(500);
    const doc = res.json() as { code: string; request_id: string };
    const logged = sluice.logs.find((l) => l.request_id === doc.request_id && l.level === 'error');
    expect((logged?.err as { message?: string } | undefined)?.message).toBe(message);
    const line = await until(
      () => sluice.accessLines().find((l) => l.request_id === doc.request_id),
      'the access line',
    );
    expect(line).toMatchObject({ status: 500, error_message: message });
  });

  it.each(['/f/echo', '/expect'])(
    'sends 100 Continue to a client that waits for it before its body (%s)',
    async (path) => {
      const socket = net.connect(sluice.port, '127.0.0.1');
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        text += d;
      });
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      );
      await until(
        () => (text.startsWith('HTTP/1.1 100 Continue\r\n\r\n') ? true : undefined),
        'the 100',
        3000,
      );
      socket.write('hello');
      await until(() => (/HTTP\/1\.1 200[\s\S]*hello/.test(text) ? true : undefined), 'the answer', 3000);
      socket.destroy();
    },
  );

  it('refuses a body over max_body before the handler runs', async () => {
    const res = await http(`${sluice.url}/f/echo`, { method: 'POST', body: 'x'.repeat(2000) });
    expect(res.status).toBe(413);
  });

  it('hands a chunked body over max_body to the handler, which enforces its own limit', async () => {
    const socket = net.connect(sluice.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.write(
      `POST /anything HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n7d0\r\n${'x'.repeat(2000)}\r\n0\r\n\r\n`,
    );
    await new Promise((r) => socket.once('close', r));
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toContain(`"body":"${'x'.repeat(2000)}"`);
  });

  it('logs handler requests like any other', async () => {
    await http(`${sluice.url}/f/echo`, { method: 'POST', body: 'logged' });
    const lines = await sluice.waitForAccessLines(1);
    expect(lines.some((l) => l.route === 'fetch' && l.status === 200 && l.path === '/f/echo')).toBe(true);
  });

  it("logs a Node listener's bytes on the wire per response, and 499 when the client leaves first", async () => {
    // Two requests on one keep-alive connection: each line counts its own response, head included.
    const socket = net.connect(sluice.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      received += d;
    });
    const answers = () => received.split(/(?=HTTP\/1\.1 )/).filter((a) => a !== '');
    const untilAnswers = async (n: number) => {
      while (answers().length < n || !/(}|\r\n0\r\n\r\n)$/.test(answers()[n - 1]!))
        await new Promise((r) => setTimeout(r, 10));
    };
    socket.write('GET /wire/a HTTP/1.1\r\nHost: x\r\n\r\n');
    await untilAnswers(1);
    socket.write('GET /wire/bb HTTP/1.1\r\nHost: x\r\n\r\n');
    await untilAnswers(2);
    socket.destroy();
    const sizes = answers().map((a) => Buffer.byteLength(a, 'latin1'));
    const logged = await until(() => {
      const lines = sluice.logs.filter((l) => l.msg === 'request' && String(l.path).startsWith('/wire/'));
      return lines.length === 2 ? lines : undefined;
    }, 'two access lines');
    expect(logged.map((l) => [l.path, l.status, l.bytes_out])).toEqual([
      ['/wire/a', 200, sizes[0]],
      ['/wire/bb', 200, sizes[1]],
    ]);

    // The client goes away before the listener answers (300 ms): nginx's 499.
    const gone = net.connect(sluice.port, '127.0.0.1');
    gone.on('error', () => undefined);
    gone.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    gone.destroy();
    const line = await until(
      () => sluice.logs.find((l) => l.msg === 'request' && l.path === '/slow'),
      '499 line',
    );
    expect(line).toMatchObject({ route: 'listener', status: 499 });
  });
});

describe('a fetch handler exported as a bare function', () => {
  // It is a Node listener to sluice (a function default export), so the Response it returned went
  // nowhere and its client waited for handler_timeout (60 s) with nothing logged but the 504.
  let sluice: TestSluice;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-bare-fetch-'));
    writeFileSync(join(dir, 'async.mjs'), "export default async (request) => new Response('bare\\n');\n");
    writeFileSync(join(dir, 'sync.mjs'), "export default (request) => new Response('bare\\n');\n");
    writeFileSync(
      join(dir, 'answers.mjs'),
      "export default async (req, res) => { res.end('listener\\n'); return new Response('ignored'); };\n",
    );
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { match: { path: '/async' }, handler: join(dir, 'async.mjs') },
            { match: { path: '/sync' }, handler: join(dir, 'sync.mjs') },
            { match: { path: '/answers' }, handler: join(dir, 'answers.mjs') },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['/async', '/sync'])(
    '%s: answered 500 at once, the log saying to export { fetch }',
    async (path) => {
      const res = await http(`${sluice.url}${path}`);
      expect(res.status).toBe(500);
      const doc = res.json() as { code: string; request_id: string };
      expect(doc.code).toBe('SLUICE_E_HANDLER_ERROR');
      const logged = sluice.logs.find(
        (l) => l.msg === 'handler failed; answered 500' && l.request_id === doc.request_id,
      );
      expect(String((logged?.err as { message?: string } | undefined)?.message)).toContain(
        'export default { fetch(request)',
      );
    },
  );

  it('leaves alone a listener that answered on res and returned something besides', async () => {
    const res = await http(`${sluice.url}/answers`);
    expect(res.status).toBe(200);
    expect(res.body).toBe('listener\n');
  });
});

describe('a request body cut short, over HTTP/1.1', () => {
  it('reaches the handler as an error, never as a whole body: client gone part-way, or request_timeout', async () => {
    // The fixture app records into this array (sluice runs in the test's process).
    const outcomes: { path: string; outcome: string; code: string }[] = [];
    (globalThis as { __bodyOutcomes?: unknown }).__bodyOutcomes = outcomes;
    const readers = ['/i/', '/e/', '/f/'];
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { request_timeout: '1s' },
          routes: [{ handler: 'test/fixtures/handlers/body-outcome-app.ts' }],
        },
      ],
    });
    const send = (head: string, body: string, closeAfterMs: number): Promise<string> =>
      new Promise((resolvePromise) => {
        const socket = net.connect(sluice.port, '127.0.0.1', () => socket.write(`${head}\r\n\r\n${body}`));
        let answer = '';
        socket.on('data', (d) => {
          answer += d;
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolvePromise(answer));
        if (closeAfterMs > 0) setTimeout(() => socket.destroy(), closeAfterMs);
      });
    try {
      const cut = readers.flatMap((r) => [
        send(`POST ${r}gone HTTP/1.1\r\nHost: a\r\nContent-Length: 1000`, 'x'.repeat(500), 150),
        send(
          `POST ${r}gone HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked`,
          `1f4\r\n${'x'.repeat(500)}\r\n`,
          150,
        ),
        send(`POST ${r}slow HTTP/1.1\r\nHost: a\r\nContent-Length: 1000`, 'z'.repeat(100), 0),
      ]);
      const answers = await Promise.all(cut);
      expect(answers.filter((a) => a.startsWith('HTTP/1.1 408'))).toHaveLength(readers.length);
      for (const r of readers) {
        const whole = await http(`${sluice.url}${r}whole`, { method: 'POST', body: 'y'.repeat(3000) });
        expect(whole.body).toBe('3000\n');
      }
      await new Promise((r) => setTimeout(r, 200));
      // Every reader gets Node's ECONNRESET "aborted"; HTTP/2 gives the same (tls-lifecycle.test.ts).
      const reset = 'error ECONNRESET';
      expect(outcomes.map((o) => `${o.path} ${o.outcome} ${o.code}`.trimEnd()).sort()).toEqual(
        readers
          .flatMap((r) => [
            `${r}gone ${reset}`,
            `${r}gone ${reset}`,
            `${r}slow ${reset}`,
            `${r}whole complete`,
          ])
          .sort(),
      );
    } finally {
      await sluice.close();
    }
  });
});

describe('a client that half-closes (FIN) part-way through its body', () => {
  // Node's parser ends such a body with HPE_INVALID_EOF_STATE: it was answered and logged 400
  // "Parse Error", which struck the client under a ban on 400s, where a reset was a 499.
  it('is logged 499, the handler reads an error, and a ban on 400 does not strike it', async () => {
    const outcomes: { path: string; outcome: string; code: string }[] = [];
    (globalThis as { __bodyOutcomes?: unknown }).__bodyOutcomes = outcomes;
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          limits: { max_body: '2mb' },
          ban: { statuses: [400], max: 1, window: '1m', duration: '1m' },
          routes: [{ handler: 'test/fixtures/handlers/body-outcome-app.ts' }],
        },
      ],
    });
    try {
      const before = sluice.accessLines().length;
      const socket = net.connect(sluice.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(
        `POST /i/half HTTP/1.1\r\nHost: a\r\nContent-Length: 900000\r\n\r\n${'x'.repeat(100_000)}`,
      );
      socket.end();
      const [line] = (await sluice.waitForAccessLines(before + 1)).slice(before);
      expect(line).toMatchObject({ status: 499, path: '/i/half' });
      await until(() => (outcomes.length > 0 ? true : undefined), 'the handler to finish reading');
      expect(outcomes).toMatchObject([{ path: '/i/half', outcome: 'error', code: 'ECONNRESET' }]);
      // Not struck: the client is served, where max: 1 would have banned it (403) after a 400.
      const next = await http(`${sluice.url}/i/whole`, { method: 'POST', body: 'y' });
      expect(next.status).toBe(200);
      expect(sluice.accessLines().map((l) => l.status)).toEqual([499, 200]);
    } finally {
      await sluice.close();
    }
  });
});

describe('fetch-style bodies follow the client', () => {
  let sluice: TestSluice;
  const stats = async () =>
    (await http(`${sluice.url}/f/stats`)).json() as {
      pulls: number;
      cancelled: number;
      aborted: number;
      open: number;
    };

  beforeAll(async () => {
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            {
              match: { path_prefix: '/f/' },
              max_body: '10mb',
              handler: 'test/fixtures/handlers/fetch-app.ts',
            },
          ],
        },
      ],
    });
  });

  afterAll(() => sluice.close());

  /** Reads answers from a raw connection; `count()` is how many heads arrived. */
  function connection() {
    const socket = net.connect(sluice.port, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      received += d;
    });
    socket.on('error', () => undefined);
    return { socket, count: () => received.match(/HTTP\/1\.1 \d{3}/g)?.length ?? 0, text: () => received };
  }

  // Node discards what is written for a HEAD and never pushes back: a body that never ends was read
  // for ever, the head never left, and the worker served nothing else.
  it('answers HEAD at once and cancels the body unread, however long it would be', async () => {
    const before = await stats();
    const c = connection();
    c.socket.write('HEAD /f/infinite HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.count() === 1 || undefined, 'the HEAD answer');
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /);
    c.socket.destroy();
    const after = await stats();
    expect(after.cancelled).toBe(before.cancelled + 1);
    expect(after.pulls - before.pulls).toBeLessThan(10);
    const line = await until(
      () => sluice.logs.find((l) => l.msg === 'request' && l.path === '/f/infinite'),
      'line',
    );
    expect(line).toMatchObject({ status: 200, bytes_out: 0 });
  });

  it('cancels an event stream and aborts request.signal when the client leaves, and logs 499 then', async () => {
    const c = connection();
    c.socket.write('GET /f/events HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.text().includes('data: tick') || undefined, 'the first event');
    const before = await stats();
    expect(before.open).toBe(1);
    c.socket.destroy();
    const after = await until(async () => {
      const s = await stats();
      return s.open === 0 ? s : undefined;
    }, 'the stream cancelled');
    expect(after.cancelled).toBe(before.cancelled + 1);
    expect(after.aborted).toBe(before.aborted + 1);
    const line = await until(
      () => sluice.logs.find((l) => l.msg === 'request' && l.path === '/f/events'),
      'line',
    );
    expect(line).toMatchObject({ status: 499 });
  });

  it('reads and drops a request body the app did not read, so the connection serves the next request', async () => {
    const c = connection();
    c.socket.write(`POST /f/ignore-body HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n`);
    c.socket.write(Buffer.alloc(2_000_000, 'b'));
    c.socket.write('GET /f/stats HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => c.count() === 2 || undefined, 'both answers', 5000);
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 [\s\S]*not read\n[\s\S]*HTTP\/1\.1 200 /);
    c.socket.destroy();
  });

  it('logs the status the client was sent when a streamed body breaks after the head', async () => {
    const c = connection();
    c.socket.write('GET /f/stream-error HTTP/1.1\r\nHost: x\r\n\r\n');
    const line = await until(
      () => sluice.logs.find((l) => l.msg === 'request' && l.path === '/f/stream-error'),
      'line',
    );
    expect(line).toMatchObject({ status: 200, error: 'SLUICE_E_HANDLER_ERROR' });
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 [\s\S]*part one\n/);
    c.socket.destroy();
  });
});

describe('fetch-style streams over HTTP/2', () => {
  // An HTTP/2 compat response has no `destroyed`: a stream reset while the app worked went
  // unnoticed, and the body it then returned was never cancelled (its timers ran on for ever).
  it('cancels the body of an answer whose stream the client reset while the app was working', async () => {
    const pki = makePki();
    const root = pki.ca('root');
    const leaf = root.leaf('h.test', { dns: ['h.test'], usage: 'server' });
    const ca = readFileSync(root.cert);
    const sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          http2: true,
          tls: { cert: leaf.cert, key: leaf.key },
          routes: [{ match: { path_prefix: '/f/' }, handler: 'test/fixtures/handlers/fetch-app.ts' }],
        },
      ],
    });
    const client = http2.connect(`https://127.0.0.1:${sluice.port}`, { ca, servername: 'h.test' });
    client.on('error', () => undefined);
    const stats = () =>
      new Promise<{ cancelled: number; open: number }>((resolve, reject) => {
        const r = client.request({ ':path': '/f/stats', ':authority': 'h.test' });
        let data = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => {
          data += d;
        });
        r.on('end', () => resolve(JSON.parse(data)));
        r.on('error', reject);
        r.end();
      });
    try {
      const before = await stats();
      const req = client.request({ ':path': '/f/late-events', ':authority': 'h.test' });
      req.on('error', () => undefined);
      req.end();
      await new Promise((r) => setTimeout(r, 50));
      req.close(http2.constants.NGHTTP2_CANCEL);
      const after = await until(async () => {
        const s = await stats();
        return s.cancelled === before.cancelled + 1 ? s : undefined;
      }, 'the stream cancelled');
      expect(after.open).toBe(before.open);
    } finally {
      client.close();
      await sluice.close();
      pki.remove();
    }
  });
});
