/**
 * The one metric inventory (prom-client), CONTRACT section 7. A worker records the data-plane
 * metrics; the primary records the process-level ones and sums every worker's into one scrape
 * (metrics-aggregator.ts).
 *
 * Recording is on the request path, so label children are looked up once and cached per route
 * (a Map keyed by a number built from method and status: no string built per request), and the
 * four per-request families are fast-metrics.ts's rather than prom-client's. Label values are
 * bounded: route names, not paths; methods outside the standard nine become OTHER, and `-` (an
 * answer given before there was a request) stays `-`.
 */
import client, { type Counter, type Gauge, type Registry } from 'prom-client';
import type { AttemptCode } from '../proxy/proxy-exchange.js';
import { TLS_FAILURE_REASONS } from '../server/tls-handshake-failure.js';
import { type CounterChild, FastCounter, FastHistogram, type HistogramChild } from './fast-metrics.js';

/** Seconds: 1 ms to 60 s, for request and upstream response times. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE'] as const;
/**
 * The method of an answer given before there was a request (a refused head, 431, 408, 503): the
 * access line says `-`, as nginx logs it, and the label says the same rather than OTHER, which
 * is for requests with a method outside the nine. CONTRACT section 7 fixes neither value.
 */
const NO_METHOD = '-';
const METHOD_INDEX = new Map<string, number>([...METHODS, NO_METHOD].map((m, i) => [m, i]));

/** A method as a label: the standard ones and `-` as they are, anything else OTHER. */
export function methodLabel(method: string): string {
  return METHOD_INDEX.has(method) ? method : 'OTHER';
}

/** The data-plane metrics of one process. */
export class DataPlaneMetrics {
  readonly requests: FastCounter<'server' | 'route' | 'method' | 'code'>;
  readonly requestDuration: FastHistogram<'server' | 'route'>;
  readonly connections: Gauge;
  readonly upstreamRequests: FastCounter<'upstream' | 'target' | 'code'>;
  readonly upstreamDuration: FastHistogram<'upstream' | 'target'>;
  readonly upstreamRetries: Counter<'upstream'>;
  readonly rateLimited: Counter<'server'>;
  readonly logLinesDropped: Counter;
  readonly tlsHandshakeFailures: Counter<'reason'>;
  readonly http2StreamsRefused: Counter<'reason'>;
  /** Keyed by the compiled route (or server, for requests no route took): a lookup, no string built. */
  readonly #perRoute = new WeakMap<object, RouteChildren>();
  /** Keyed by the run-time target object. */
  readonly #perTarget = new WeakMap<object, TargetChildren>();

  /**
   * Registers the metrics in `registry`; `connections` and `droppedLogLines` (a running total) are
   * read from their callbacks at scrape time.
   */
  constructor(registry: Registry, connections: () => number, droppedLogLines: () => number = () => 0) {
    const registers = [registry];
    this.requests = new FastCounter({
      name: 'sluice_http_requests_total',
      help: 'HTTP requests answered, by server, route, method and status code.',
      labelNames: ['server', 'route', 'method', 'code'],
      registers,
    });
    this.requestDuration = new FastHistogram({
      name: 'sluice_http_request_duration_seconds',
      help: 'Time from the request head to the end of the answer, by server and route.',
      labelNames: ['server', 'route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.connections = new client.Gauge({
      name: 'sluice_http_connections_active',
      help: 'Open client connections.',
      registers,
      collect() {
        this.set(connections());
      },
    });
    this.upstreamRequests = new FastCounter({
      name: 'sluice_upstream_requests_total',
      help: 'Attempts sent to upstream targets, by upstream, target and status code (error or timeout when none came).',
      labelNames: ['upstream', 'target', 'code'],
      registers,
    });
    this.upstreamDuration = new FastHistogram({
      name: 'sluice_upstream_response_duration_seconds',
      help: 'Time from sending an attempt to the end of its response, by upstream and target.',
      labelNames: ['upstream', 'target'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.upstreamRetries = new client.Counter({
      name: 'sluice_upstream_retries_total',
      help: 'Requests passed on to another attempt, by upstream.',
      labelNames: ['upstream'],
      registers,
    });
    this.rateLimited = new client.Counter({
      name: 'sluice_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by server.',
      labelNames: ['server'],
      registers,
    });
    let counted = 0;
    this.logLinesDropped = new client.Counter({
      name: 'sluice_log_lines_dropped_total',
      help: 'Log lines lost: the destination failed, or fell more than 16 MiB behind.',
      registers,
      collect() {
        const total = droppedLogLines();
        if (total > counted) this.inc(total - counted);
        counted = total;
      },
    });
    this.tlsHandshakeFailures = new client.Counter({
      name: 'sluice_tls_handshake_failures_total',
      help: 'TLS connections refused before they carried a request, by reason (client_cert_missing, client_cert_rejected, version, protocol, plain_http, timeout, closed).',
      labelNames: ['reason'],
      registers,
    });
    // Every reason from the start, so a rate over it has a series before the first failure.
    for (const reason of TLS_FAILURE_REASONS) this.tlsHandshakeFailures.labels(reason).inc(0);
    this.http2StreamsRefused = new client.Counter({
      name: 'sluice_http2_streams_refused_total',
      help: 'HTTP/2 streams refused with REFUSED_STREAM, not served, by reason (concurrency: over the exchanges one connection may run, as in Rapid Reset; max_requests: sent past the GOAWAY of max_requests_per_connection).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['concurrency', 'max_requests']) this.http2StreamsRefused.labels(reason).inc(0);
  }

  /** Records one answered request; `key` identifies the (server, route) pair. */
  request(key: object, server: string, route: string, method: string, status: number, seconds: number): void {
    let children = this.#perRoute.get(key);
    if (children === undefined) {
      children = { duration: this.requestDuration.child(server, route), counts: new Map(), server, route };
      this.#perRoute.set(key, children);
    }
    children.duration.observe(seconds);
    const index = METHOD_INDEX.get(method) ?? METHOD_INDEX.size;
    const countKey = status * 16 + index;
    let counter = children.counts.get(countKey);
    if (counter === undefined) {
      counter = this.requests.child(server, route, methodLabel(method), String(status));
      children.counts.set(countKey, counter);
    }
    counter.inc();
  }

  /** Records one upstream attempt (`key` identifies the target): `code` is the status, or `error` / `timeout`. */
  attempt(key: object, upstream: string, target: string, code: number | AttemptCode, seconds: number): void {
    let children = this.#perTarget.get(key);
    if (children === undefined) {
      children = { duration: this.upstreamDuration.child(upstream, target), counts: new Map() };
      this.#perTarget.set(key, children);
    }
    children.duration.observe(seconds);
    let counter = children.counts.get(code);
    if (counter === undefined) {
      counter = this.upstreamRequests.child(upstream, target, String(code));
      children.counts.set(code, counter);
    }
    counter.inc();
  }

  /** Records a retry on `upstream`. */
  retry(upstream: string): void {
    this.upstreamRetries.labels(upstream).inc();
  }
}

interface RouteChildren {
  readonly server: string;
  readonly route: string;
  readonly duration: HistogramChild;
  readonly counts: Map<number, CounterChild>;
}

interface TargetChildren {
  readonly duration: HistogramChild;
  readonly counts: Map<number | string, CounterChild>;
}

/** The primary's own metrics: workers, restarts, reloads, target health, bans. */
export class ControlPlaneMetrics {
  readonly workers: Gauge;
  readonly workerRestarts: Counter;
  readonly configReloads: Counter<'result'>;
  readonly targetUp: Gauge<'upstream' | 'target'>;
  readonly bansActive: Gauge;

  constructor(
    registry: Registry,
    read: {
      workers: () => number;
      targets: () => Iterable<{ upstream: string; target: string; up: boolean }>;
      bans: () => number;
    },
  ) {
    const registers = [registry];
    this.workers = new client.Gauge({
      name: 'sluice_workers',
      help: 'Worker processes running.',
      registers,
      collect() {
        this.set(read.workers());
      },
    });
    this.workerRestarts = new client.Counter({
      name: 'sluice_worker_restarts_total',
      help: 'Workers restarted after dying.',
      registers,
    });
    this.configReloads = new client.Counter({
      name: 'sluice_config_reloads_total',
      help: 'Config reloads, by result (success or failure).',
      labelNames: ['result'],
      registers,
    });
    this.configReloads.labels('success').inc(0);
    this.configReloads.labels('failure').inc(0);
    this.targetUp = new client.Gauge({
      name: 'sluice_upstream_target_up',
      help: 'Whether an upstream target can take requests (1) or not (0: down, failed, draining).',
      labelNames: ['upstream', 'target'],
      registers,
      collect() {
        this.reset();
        for (const t of read.targets()) this.labels(t.upstream, t.target).set(t.up ? 1 : 0);
      },
    });
    this.bansActive = new client.Gauge({
      name: 'sluice_bans_active',
      help: 'Clients currently banned.',
      registers,
      collect() {
        this.set(read.bans());
      },
    });
  }
}

/**
 * A registry with prom-client's process and Node.js defaults: event-loop lag, heap, GC, open fds,
 * and Node's answer to a goroutine count, `nodejs_active_handles` / `_requests` / `_resources`.
 * prom-client also exports those three as gauges named `*_total`, which `promtool check metrics`
 * rejects (the suffix is for counters): those duplicates are dropped.
 */
export function newRegistry(): Registry {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }
  return registry;
}
