/**
 * Spans exported over OTLP/HTTP with the OpenTelemetry SDK, when `tracing.otlp_endpoint` is set:
 * a SERVER span per request and a CLIENT span per upstream attempt, batched off the request path.
 * New traces are sampled at `sample_ratio`; a client's sampling decision is followed. Without an
 * endpoint this module is not used: ids are still made and propagated (trace-context.ts).
 */
import {
  type Context,
  context,
  type Tracer as OtelTracer,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { ResolvedTracing } from '../config/types.js';
import { VERSION } from '../core/version.js';
import type { AttemptCode } from '../proxy/proxy-exchange.js';
import type { TraceParent } from './trace-context.js';

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
  end(code: number | AttemptCode): void;
}

/** The exporting tracer of one process. */
export class Tracer {
  readonly #provider: BasicTracerProvider;
  readonly #tracer: OtelTracer;

  constructor(config: ResolvedTracing & { otlpEndpoint: string }) {
    this.#provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': VERSION }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: config.otlpEndpoint }), {
          scheduledDelayMillis: 1000,
        }),
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
    return new ServerSpan(this.#tracer, span, method);
  }

  /** Exports what is buffered and stops. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown().catch(() => undefined);
  }
}

class ServerSpan implements RequestSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: string;
  readonly #tracer: OtelTracer;
  readonly #span: Span;
  readonly #method: string;

  constructor(tracer: OtelTracer, span: Span, method: string) {
    this.#tracer = tracer;
    this.#span = span;
    this.#method = method;
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.flags = sc.traceFlags.toString(16).padStart(2, '0');
  }

  attempt(upstream: string, target: string): AttemptSpan {
    const span = this.#tracer.startSpan(
      `proxy ${upstream}`,
      { kind: SpanKind.CLIENT, attributes: { 'sluice.upstream': upstream, 'server.address': target } },
      trace.setSpan(context.active(), this.#span),
    );
    return {
      spanId: span.spanContext().spanId,
      end(code) {
        if (typeof code === 'number') {
          span.setAttribute('http.response.status_code', code);
          if (code >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        } else {
          span.setAttribute('error.type', code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        }
        span.end();
      },
    };
  }

  end(route: string | null, status: number, error: string | null): void {
    const span = this.#span;
    if (route !== null) {
      span.updateName(`${this.#method} ${route}`);
      span.setAttribute('http.route', route);
    }
    span.setAttribute('http.response.status_code', status);
    if (status >= 500 || error !== null)
      span.setStatus({ code: SpanStatusCode.ERROR, ...(error === null ? {} : { message: error }) });
    span.end();
  }
}
