/**
 * autocannon (v9), typed with the few parts `sluice bench` uses. autocannon ships no types and is a
 * CommonJS module, so it is loaded with `createRequire`; the declarations below follow its
 * lib/run.js, lib/aggregateResult.js and lib/httpClient.js.
 */
import { createRequire } from 'node:module';

/** The counters of one finished run that `sluice bench` reads (lib/aggregateResult.js). */
export interface AutocannonResult {
  /** Seconds, rounded to 10 ms. */
  readonly duration: number;
  /** Socket errors plus timeouts (one per failed connection, not per request in flight). */
  readonly errors: number;
  readonly timeouts: number;
  /** Answers whose status is not 2xx. */
  readonly non2xx: number;
  readonly '1xx': number;
  readonly '2xx': number;
  readonly '3xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
  /** Answers by status code: `{ "200": { count: 10 } }`. */
  readonly statusCodeStats: Readonly<Record<string, { readonly count: number }>>;
  /** `total` is answers received; `sent` is requests written. */
  readonly requests: { readonly total: number; readonly sent: number };
  /** `total` is response bytes received (head and body). */
  readonly throughput: { readonly total: number };
}

/** The options `sluice bench` passes (lib/defaultOptions.js lists them all). */
export interface AutocannonOptions {
  readonly url: string;
  readonly connections: number;
  /** Seconds; fractions work when `sampleInt` is small (the stop flag is read once per sample). */
  readonly duration: number;
  /** Milliseconds between samples. */
  readonly sampleInt: number;
  readonly pipelining: number;
  /** Seconds; autocannon refuses less than 1. */
  readonly timeout: number;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Called with each connection's client as it is created. */
  readonly setupClient: (client: AutocannonClient) => void;
}

/** The internals of autocannon's per-connection client (lib/httpClient.js) that `sluice bench` uses. */
export interface AutocannonClient {
  /** Parsed response head; `shouldKeepAlive` is false after `Connection: close`. */
  on(event: 'headers', fn: (info: { shouldKeepAlive?: boolean }) => void): this;
  /** A socket error; the client reconnects at once. */
  on(event: 'connError', fn: (err: Error & { code?: string }) => void): this;
  /** Requests written and not yet answered, oldest first. */
  readonly pipelinedRequests: { size(): number; clear(): void };
  _connect(...args: unknown[]): unknown;
  _doRequest(...args: unknown[]): unknown;
  _resetConnection(): void;
}

/** A running load: a promise of the result, events, and `stop()`. */
export interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  /** One per answer; `responseTime` in milliseconds with microsecond precision (process.hrtime). */
  on(
    event: 'response',
    fn: (client: AutocannonClient, statusCode: number, resBytes: number, responseTime: number) => void,
  ): this;
  /** One per request lost to a socket error or timeout (times the pipelining factor). */
  on(event: 'reqError', fn: (err: Error & { code?: string }) => void): this;
  /** Ends the run at the next sample; the promise then resolves with what was measured. */
  stop(): void;
}

/** autocannon's entry point (lib/init.js): without a callback it returns a thenable instance. */
export type Autocannon = (opts: AutocannonOptions) => AutocannonInstance;

/**
 * The HTTP methods autocannon's request builder accepts (lib/httpMethods.js), less CONNECT (a
 * tunnel, not a request to measure) and HEAD: its response parser is not told the request was HEAD,
 * so it waits for a body of Content-Length bytes that never comes and counts no answer at all.
 */
export const AUTOCANNON_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'PATCH'] as const;

let loaded: Autocannon | undefined;

/** autocannon, loaded on first use (it initialises a WebAssembly histogram at require time). */
export function loadAutocannon(): Autocannon {
  loaded ??= createRequire(import.meta.url)('autocannon') as Autocannon;
  return loaded;
}
