/** The tracer says when its spans cannot be exported: the SDK drops them without a word. */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { Tracer } from '../../src/observability/tracer.js';

describe('span exports', () => {
  it('warns once while exports fail, and once when they work again', async () => {
    let status = 500;
    let received = 0;
    const collector = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (status === 200) received++;
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    // Credentials in the URL stay out of the warning.
    const url = `http://user:secret@127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const warnings: { obj: Record<string, unknown>; msg: string; level: string }[] = [];
    const tracer = new Tracer(
      { otlpEndpoint: url, sampleRatio: 1, serviceName: 't' },
      (obj, msg, level = 'warn') => warnings.push({ obj: obj as Record<string, unknown>, msg, level }),
    );
    const oneSpan = () => tracer.startRequest('GET', '/', null, null).end(null, 200, null);
    try {
      for (let round = 0; round < 2; round++) {
        oneSpan();
        await tracer.flush();
      }
      expect(warnings.map((w) => w.msg)).toEqual([
        'tracing: spans could not be exported; they are dropped until the collector takes them',
      ]);
      expect(warnings[0]?.obj.endpoint).toBe(url.replace('user:secret', 'user:redacted'));
      status = 200;
      oneSpan();
      await tracer.flush();
      expect(received).toBe(1);
      expect(warnings.map((w) => w.msg)).toEqual([
        'tracing: spans could not be exported; they are dropped until the collector takes them',
        'tracing: spans are exported again',
      ]);
      // The recovery is news, not a warning.
      expect(warnings.map((w) => w.level)).toEqual(['warn', 'info']);
    } finally {
      await tracer.shutdown();
      collector.close();
    }
  });

  it('stops within the time it is given when the collector never answers, and says what it drops', async () => {
    // Accepts and never answers: the exporter alone would wait 10 s per batch.
    const sockets: net.Socket[] = [];
    const collector = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(collector.address() as AddressInfo).port}/v1/traces`;
    const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
    const tracer = new Tracer({ otlpEndpoint: url, sampleRatio: 1, serviceName: 't' }, (obj, msg) =>
      warnings.push({ obj: obj as Record<string, unknown>, msg }),
    );
    try {
      for (let i = 0; i < 3; i++) tracer.startRequest('GET', '/', null, null).end(null, 200, null);
      const started = performance.now();
      await tracer.shutdown(300);
      expect(performance.now() - started).toBeLessThan(5000);
      expect(warnings).toEqual([
        {
          obj: { endpoint: url, spans: 3, timeout_ms: 300 },
          msg: 'tracing: spans not exported by the stop deadline are dropped',
        },
      ]);
    } finally {
      for (const s of sockets) s.destroy();
      collector.close();
    }
  });

  it('warns in the config when the endpoint has no path (spans would be posted to /)', () => {
    const r = loadConfigText(
      'tracing: { otlp_endpoint: "http://127.0.0.1:4318" }\nservers: [{ listen: "127.0.0.1:8080", routes: [{ respond: {} }] }]\n',
      't.yaml',
      {},
    );
    if (!r.ok) throw new Error('refused');
    expect(r.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      't.yaml:1:27: SLUICE_E_CONFIG_URL warning: tracing.otlp_endpoint: "http://127.0.0.1:4318" has no path: spans are posted to "/" (hint: OTLP/HTTP collectors take traces at /v1/traces: http://127.0.0.1:4318/v1/traces)',
    ]);
  });
});
