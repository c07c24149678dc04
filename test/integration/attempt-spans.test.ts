/**
 * The CLIENT span of an upstream attempt names what broke it with the error code the access line
 * and the SERVER span carry (SLUICE_E_UPSTREAM_CONNECT, _TIMEOUT, _INVALID_RESPONSE, _RESET), and
 * an answer cut off mid-body is an error span too, though its status was a 200.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawUpstream, rawUpstream } from '../helpers/raw-upstream.js';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

type Attr = { key: string; value: { stringValue?: string; intValue?: number | string } };
type OtlpSpan = {
  traceId: string;
  kind: number;
  attributes: Attr[];
  status?: { code?: number; message?: string };
};

const attrs = (s: OtlpSpan) =>
  Object.fromEntries(s.attributes.map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]));

/** What each path of the raw upstream answers. */
const ANSWERS: Record<string, string> = {
  '/invalid': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
  // 7 of the 100 bytes announced, then the connection closes.
  '/cut': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n1234567',
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
};

describe('CLIENT spans of failed attempts', () => {
  let collector: http.Server;
  const spans: OtlpSpan[] = [];
  let up: RawUpstream;
  let silent: RawUpstream;
  let closed: number;
  let sluice: TestSluice;

  beforeAll(async () => {
    collector = await otlpCollector(spans);
    up = await rawUpstream((path) => ANSWERS[path] ?? ANSWERS['/ok']!);
    silent = await rawUpstream(() => '', { mode: 'silent' });
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    closed = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    sluice = await startSluice({
      tracing: { otlp_endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces` },
      servers: [
        {
          listen: '127.0.0.1:0',
          routes: [
            { match: { path: '/refused' }, proxy: { url: `http://127.0.0.1:${closed}` } },
            {
              match: { path: '/silent' },
              proxy: { url: `http://127.0.0.1:${silent.port}`, timeouts: { read: '300ms' } },
            },
            { proxy: { url: `http://127.0.0.1:${up.port}` } },
          ],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
    await up?.close();
    await silent?.close();
    collector?.close();
  });

  /** Sends a GET to `path` in a trace of its own; its status (0 when the answer broke off). */
  async function send(path: string, traceId: string): Promise<number> {
    return new Promise((resolve) => {
      const req = http.get(
        `${sluice.url}${path}`,
        { agent: false, headers: { traceparent: `00-${traceId}-${'1'.repeat(16)}-01` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      req.on('error', () => resolve(0));
    });
  }

  async function clientSpans(traceId: string): Promise<OtlpSpan[]> {
    const until = Date.now() + 10_000;
    for (;;) {
      const mine = spans.filter((s) => s.traceId === traceId);
      // The SERVER span ends last: once it is in, so are the attempts.
      if (mine.some((s) => s.kind === 2)) return mine.filter((s) => s.kind === 3);
      if (Date.now() > until) throw new Error(`no spans exported for trace ${traceId}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it.each([
    ['/refused', 502, 'SLUICE_E_UPSTREAM_CONNECT', undefined, '1'],
    ['/silent', 504, 'SLUICE_E_UPSTREAM_TIMEOUT', undefined, '2'],
    ['/invalid', 502, 'SLUICE_E_UPSTREAM_INVALID_RESPONSE', undefined, '3'],
    // The client sees the answer break off; the target had answered 200.
    ['/cut', 0, 'SLUICE_E_UPSTREAM_RESET', 200, '4'],
  ] as const)(
    '%s (answered %i): the attempt span has error.type %s',
    async (path, status, code, upstreamStatus, id) => {
      const traceId = id.repeat(32);
      expect(await send(path, traceId)).toBe(status);
      const [access] = (await sluice.waitForAccessLines(1)).filter((l) => l.trace_id === traceId);
      expect(access?.error).toBe(code);
      const attempts = await clientSpans(traceId);
      expect(attempts.length).toBeGreaterThan(0);
      for (const span of attempts) {
        expect(attrs(span)['error.type']).toBe(code);
        // SpanStatusCode.ERROR
        expect(span.status?.code).toBe(2);
        expect(attrs(span)['http.response.status_code']).toBe(upstreamStatus);
      }
    },
  );

  it('a complete answer is an OK span with its status', async () => {
    const traceId = 'b'.repeat(32);
    expect(await send('/ok', traceId)).toBe(200);
    const [span] = await clientSpans(traceId);
    expect(attrs(span!)['http.response.status_code']).toBe(200);
    expect(attrs(span!)['error.type']).toBeUndefined();
    expect(span!.status?.code ?? 0).toBe(0);
  });
});

/**
 * An answer whose head came and whose body was cut by sluice's side (the client left, or
 * shutdown_timeout cut it): the metric keeps the status the target sent, as nginx's
 * $upstream_status does, and the CLIENT span says the attempt was aborted. The span was an OK 200,
 * as if the whole answer had been relayed.
 */
describe('CLIENT spans of attempts whose answer was cut after its head', () => {
  let collector: http.Server;
  const spans: OtlpSpan[] = [];
  let streaming: TestUpstream;

  beforeAll(async () => {
    collector = await otlpCollector(spans);
    // 100 bytes every 100 ms, for 20 s.
    streaming = await startUpstream(
      (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let sent = 0;
        const timer = setInterval(() => {
          res.write('x'.repeat(100));
          if (++sent === 200) {
            clearInterval(timer);
            res.end();
          }
        }, 100);
        res.on('close', () => clearInterval(timer));
      },
      { streaming: true },
    );
  });

  afterAll(async () => {
    await streaming?.close();
    collector?.close();
  });

  const start = () =>
    startSluice({
      tracing: { otlp_endpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces` },
      servers: [{ listen: '127.0.0.1:0', routes: [{ proxy: { url: streaming.url } }] }],
    });

  /** Sends a GET in a trace of its own; resolves once the first bytes of the body arrived. */
  function open(sluice: TestSluice, traceId: string): Promise<http.ClientRequest> {
    return new Promise((resolve, reject) => {
      const req = http.get(
        `${sluice.url}/stream`,
        { agent: false, headers: { traceparent: `00-${traceId}-${'1'.repeat(16)}-01` } },
        (res) => {
          res.once('data', () => resolve(req));
          res.on('error', () => undefined);
        },
      );
      req.on('error', reject);
    });
  }

  async function attemptSpan(traceId: string): Promise<OtlpSpan> {
    return until(() => spans.find((s) => s.traceId === traceId && s.kind === 3), 'the CLIENT span');
  }

  const attempts = async (sluice: TestSluice) =>
    (await sluice.instance.registry.metrics())
      .split('\n')
      .filter((l) => l.startsWith('sluice_upstream_requests_total{'))
      .map((l) => l.replace(/^.*code="([^"]*)"\} (\d+)$/, '$1 $2'));

  it('the client leaves mid-body: counted 200, the span aborted', async () => {
    const sluice = await start();
    try {
      const traceId = 'c'.repeat(32);
      const req = await open(sluice, traceId);
      await new Promise((r) => setTimeout(r, 1000));
      req.destroy();
      const [line] = await sluice.waitForAccessLines(1);
      expect(line).toMatchObject({ status: 499, trace_id: traceId });
      const span = await attemptSpan(traceId);
      expect(attrs(span)['http.response.status_code']).toBe(200);
      expect(attrs(span)['error.type']).toBe('aborted');
      expect(span.status?.code).toBe(2); // ERROR
      expect(await attempts(sluice)).toEqual(['200 1']);
    } finally {
      await sluice.close();
    }
  });

  it('shutdown_timeout cuts it mid-body: counted 200, the span aborted', async () => {
    const sluice = await start();
    const traceId = 'd'.repeat(32);
    const req = await open(sluice, traceId);
    req.on('error', () => undefined);
    // The stop exports the spans ended so far before it returns.
    await sluice.instance.close(300);
    req.destroy();
    const [line] = await sluice.waitForAccessLines(1);
    expect(line).toMatchObject({
      status: 499,
      error: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT',
      trace_id: traceId,
    });
    const span = await attemptSpan(traceId);
    expect(attrs(span)['http.response.status_code']).toBe(200);
    expect(attrs(span)['error.type']).toBe('aborted');
    expect(span.status?.code).toBe(2);
    expect(await attempts(sluice)).toEqual(['200 1']);
  });
});

/** An OTLP/HTTP JSON receiver on loopback that adds every span it is sent to `spans`. */
async function otlpCollector(spans: OtlpSpan[]): Promise<http.Server> {
  const collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans?: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  return collector;
}
