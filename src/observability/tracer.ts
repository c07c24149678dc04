/**
 * Spans exported over OTLP/HTTP with the OpenTelemetry SDK, when `tracing.otlp_endpoint` is set:
 * a SERVER span per request and a CLIENT span per upstream attempt, batched off the request path.
 * New traces are sampled at `sample_ratio`; a client's sampling decision is followed. Without an
 * endpoint this module is not used: ids are still made and propagated (trace-context.ts).
 */
import { createRequire } from 'node:module';
import type * as OtelApi from '@opentelemetry/api';
import type { Context, Tracer as OtelTracer, Span } from '@opentelemetry/api';
import type * as OtelCore from '@opentelemetry/core';
import type * as OtelExporter from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace-base';
import type { ResolvedTracing } from '../config/types.js';
import { redactUrl } from '../core/redact.js';
import { VERSION } from '../core/version.js';
import type { AttemptBreak, AttemptCode } from '../proxy/proxy-exchange.js';
import type { TraceParent } from './trace-context.js';

/**
 * The SDK is loaded on the first Tracer, not with this module: it costs every process about 17 MB
 * of RSS (measured: 41 MB bare Node, +17 MB after importing the exporter), which a process without
 * `tracing.otlp_endpoint` should not pay. The packages ship CommonJS, so a synchronous require keeps
 * the constructor synchronous.
 */
/** Where the tracer reports export trouble: at `warn` unless `level` says otherwise. */
export type TraceLog = (obj: object, msg: string, level?: 'warn' | 'info') => void;

interface Otel {
  readonly api: typeof OtelApi;
  readonly core: typeof OtelCore;
  readonly exporter: typeof OtelExporter;
  readonly resources: typeof OtelResources;
  readonly sdk: typeof OtelSdk;
}
let loaded: Otel | null = null;
function otel(): Otel {
  if (loaded === null) {
    const require = createRequire(import.meta.url);
    loaded = {
      api: require('@opentelemetry/api') as typeof OtelApi,
      core: require('@opentelemetry/core') as typeof OtelCore,
      exporter: require('@opentelemetry/exporter-trace-otlp-http') as typeof OtelExporter,
      resources: require('@opentelemetry/resources') as typeof OtelResources,
      sdk: require('@opentelemetry/sdk-trace-base') as typeof OtelSdk,
    };
  }
  return loaded;
}

/** A request's server span. */
export interface RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  /** Starts the CLIENT span of one upstream attempt. */
  attempt(upstream: string, target: string): AttemptSpan;
  /** Names the span after its route, sets the outcome and ends it. */
  end(route: string | null, status: number, error: string | null): void;
}

/** One upstream attempt's span. */
export interface AttemptSpan {
  readonly spanId: string;
  /**
   * Ends it with the status or how it failed; `failure` is what broke it: the catalogue code, or
   * `aborted` when sluice's side abandoned it (its status, if the head came, is kept).
   */
  end(code: number | AttemptCode, failure?: AttemptBreak): void;
}

/** The exporting tracer of one process. */
export class Tracer {
  readonly #provider: OtelSdk.BasicTracerProvider;
  readonly #tracer: OtelTracer;
  readonly #otel: Otel;
  readonly #pending = new PendingSpans();
  readonly #endpoint: string;
  readonly #warn: TraceLog;

  /** `warn` hears once when spans start failing to export, and once when they export again. */
  constructor(config: ResolvedTracing & { otlpEndpoint: string }, warn: TraceLog = () => undefined) {
    const o = otel();
    this.#otel = o;
    this.#endpoint = redactUrl(config.otlpEndpoint);
    this.#warn = warn;
    const { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } = o.sdk;
    const { OTLPTraceExporter } = o.exporter;
    const { resourceFromAttributes } = o.resources;
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': VERSION }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [
        this.#pending.count(
          new BatchSpanProcessor(
            this.#pending.watch(
              watchExports(new OTLPTraceExporter({ url: config.otlpEndpoint }), config.otlpEndpoint, warn),
            ),
            { scheduledDelayMillis: 1000, maxQueueSize: MAX_QUEUE },
          ),
        ),
      ],
    });
    this.#tracer = this.#provider.getTracer('sluice', VERSION);
  }

  /** Starts the server span of a request, as a child of the client's span when it sent one. */
  startRequest(
    method: string,
    path: string,
    parent: TraceParent | null,
    tracestate: string | null,
  ): RequestSpan {
    const { ROOT_CONTEXT, SpanKind, trace } = this.#otel.api;
    const { TraceState } = this.#otel.core;
    let parentContext: Context = ROOT_CONTEXT;
    if (parent !== null) {
      parentContext = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: parent.traceId,
        spanId: parent.parentId,
        traceFlags: Number.parseInt(parent.flags, 16),
        isRemote: true,
        ...(tracestate === null ? {} : { traceState: new TraceState(tracestate) }),
      });
    }
    const span = this.#tracer.startSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': path } },
      parentContext,
    );
    return new ServerSpan(this.#otel.api, this.#tracer, span, method);
  }

  /** Exports the spans ended so far. */
  async flush(): Promise<void> {
    await this.#provider.forceFlush().catch(() => undefined);
  }

  /**
   * Exports what is buffered and stops, waiting at most `timeoutMs`: the OTLP exporter gives a
   * collector 10 s per batch and retries a refused connection, so a collector down or hanging held
   * a stop for 6-12 s, past the primary's kill. Spans still unsent then are dropped, and said once.
   */
  async shutdown(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    const done = this.#provider.shutdown().then(
      () => true,
      () => true,
    );
    if (timeoutMs === Number.POSITIVE_INFINITY) {
      await done;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
    });
    const exported = await Promise.race([done, late]);
    clearTimeout(timer);
    if (!exported && this.#pending.unsent > 0) {
      this.#warn(
        { endpoint: this.#endpoint, spans: this.#pending.unsent, timeout_ms: Math.round(timeoutMs) },
        'tracing: spans not exported by the stop deadline are dropped',
      );
    }
  }
}

/** The batch processor's queue bound (the SDK's default), which PendingSpans mirrors. */
const MAX_QUEUE = 2048;

/**
 * How many ended spans are not yet exported (queued in the batch processor, or in an export that
 * has not answered), so a stop cut short can say how many it drops. The SDK keeps its queue private:
 * this counts spans in as the processor takes them (it drops them past MAX_QUEUE) and out as the
 * exporter answers, O(1) per span.
 */
class PendingSpans {
  #queued = 0;
  #exporting = 0;
  #closed = false;

  /** Spans ended and not yet exported. */
  get unsent(): number {
    return this.#queued + this.#exporting;
  }

  /** The processor, with the spans it takes counted in. */
  count(processor: OtelSdk.SpanProcessor): OtelSdk.SpanProcessor {
    return {
      onStart: (span, parent) => processor.onStart(span, parent),
      onEnd: (span) => {
        // The batch processor's own rules: unsampled spans, spans after shutdown and spans past
        // a full queue never reach the exporter.
        if (
          !this.#closed &&
          (span.spanContext().traceFlags & 1) === 1 /* sampled */ &&
          this.#queued < MAX_QUEUE
        )
          this.#queued++;
        processor.onEnd(span);
      },
      forceFlush: () => processor.forceFlush(),
      shutdown: () => {
        this.#closed = true;
        return processor.shutdown();
      },
    };
  }

  /** The exporter, with the spans it answers for counted out. */
  watch(exporter: OtelSdk.SpanExporter): OtelSdk.SpanExporter {
    return {
      export: (spans, done) => {
        const n = spans.length;
        this.#queued = Math.max(0, this.#queued - n);
        this.#exporting += n;
        exporter.export(spans, (result) => {
          this.#exporting -= n;
          done(result);
        });
      },
      shutdown: () => exporter.shutdown(),
      forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
    };
  }
}

class ServerSpan implements RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  readonly #api: typeof OtelApi;
  readonly #tracer: OtelTracer;
  readonly #span: Span;
  readonly #method: string;

  constructor(api: typeof OtelApi, tracer: OtelTracer, span: Span, method: string) {
    this.#api = api;
    this.#tracer = tracer;
    this.#span = span;
    this.#method = method;
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.flags = sc.traceFlags.toString(16).padStart(2, '0');
  }

  attempt(upstream: string, target: string): AttemptSpan {
    const { SpanKind, SpanStatusCode, context, trace } = this.#api;
    const server = serverOf(target);
    const span = this.#tracer.startSpan(
      `proxy ${upstream}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': this.#method,
          'server.address': server.address,
          'server.port': server.port,
          'sluice.upstream': upstream,
          'sluice.target': target,
        },
      },
      trace.setSpan(context.active(), this.#span),
    );
    return {
      spanId: span.spanContext().spanId,
      end(code, failure) {
        if (typeof code === 'number') span.setAttribute('http.response.status_code', code);
        if (failure !== undefined) {
          // No answer, or one cut short (a 200 whose body broke off, or that the client left
          // before it was whole): the error code, as the SERVER span and the access line name it,
          // or `aborted`; the metric keeps its few values.
          span.setAttribute('error.type', failure);
          span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
        } else if (typeof code !== 'number') {
          span.setAttribute('error.type', code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        } else if (code >= 400) {
          // A CLIENT span is an error for a 4xx too (OTel's HTTP conventions).
          span.setAttribute('error.type', String(code));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    };
  }

  end(route: string | null, status: number, error: string | null): void {
    const { SpanStatusCode } = this.#api;
    const span = this.#span;
    if (route !== null) {
      span.updateName(`${this.#method} ${route}`);
      span.setAttribute('http.route', route);
    }
    span.setAttribute('http.response.status_code', status);
    if (error !== null) span.setAttribute('sluice.error', error);
    // OTel's HTTP conventions: a SERVER span is an error for a 5xx only; a 4xx is the client's
    // (a 413 or a 429 is sluice working), so its status stays unset and the code is an attribute.
    if (status >= 500) {
      span.setAttribute('error.type', error ?? String(status));
      span.setStatus({ code: SpanStatusCode.ERROR, ...(error === null ? {} : { message: error }) });
    }
    span.end();
  }
}

/** Where a target origin points, as OTel's `server.address` and `server.port`; memoized per origin. */
const servers = new Map<string, { readonly address: string; readonly port: number }>();
function serverOf(origin: string): { readonly address: string; readonly port: number } {
  let server = servers.get(origin);
  if (server === undefined) {
    const url = new URL(origin);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    server = { address: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
    // Resolved targets come and go with DNS: the memo stays bounded.
    if (servers.size >= 1024) servers.clear();
    servers.set(origin, server);
  }
  return server;
}

/**
 * The exporter, with its failures said once per streak: the SDK drops spans it cannot export
 * without a word, so a wrong endpoint or a collector that is down looked like tracing that works.
 */
function watchExports(exporter: OtelSdk.SpanExporter, url: string, warn: TraceLog): OtelSdk.SpanExporter {
  // Logged as the config shows it: credentials in the URL stay out of the log.
  const endpoint = redactUrl(url);
  let failing = false;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        // ExportResultCode: 0 SUCCESS, 1 FAILED.
        if (result.code !== 0 && !failing) {
          failing = true;
          warn(
            { endpoint, err: result.error?.message ?? 'export failed', spans: spans.length },
            'tracing: spans could not be exported; they are dropped until the collector takes them',
          );
        } else if (result.code === 0 && failing) {
          failing = false;
          // Good news: logged at info, so an alert on warnings does not fire for the recovery too.
          warn({ endpoint }, 'tracing: spans are exported again', 'info');
        }
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
