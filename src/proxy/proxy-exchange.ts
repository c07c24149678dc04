/**
 * What the proxy needs from the request being served. Declared here, by the consumer, and
 * implemented by the server's exchange, so proxy/ does not depend on server/.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorCode } from '../errors/catalogue.js';
import type { LocalFailureCode } from './upstream-error.js';
import type { VariableSource } from './variables.js';

/**
 * How an attempt ended without a status: failed, timed out, or abandoned (the client left, or
 * shutdown_timeout cut the request) before the target's answer began.
 */
export type AttemptCode = 'error' | 'timeout' | 'aborted';

/**
 * What broke an attempt, for its span: the catalogue code (no answer, or an answer that broke off),
 * or `aborted` when sluice's side abandoned it (the client left, shutdown_timeout), before or after
 * the target's head.
 */
export type AttemptBreak = ErrorCode | 'aborted';

/** Observes one upstream attempt (metrics, the attempt's span). */
export interface AttemptObserver {
  /** The `traceparent` to send with the attempt. */
  readonly traceparent: string;
  /**
   * The attempt ended with this status (the target's, once its head came), or an error, a timeout
   * or abandoned before it; `failure` is what broke it (see AttemptBreak), absent when it ended
   * well or its answer was discarded to retry on its status.
   */
  done(code: number | AttemptCode, failure?: AttemptBreak): void;
}

/** The downstream side of one proxied request. */
export interface ProxyExchange extends VariableSource {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  /** Normalised path, no query. */
  readonly path: string;
  /** The path routes matched (`%2F` and path characters decoded, routePathOf); usually `path` itself. */
  readonly routePath: string;
  /** `?...` or ''. */
  readonly query: string;
  /** Lower-case header names the client's `Connection` header lists, or null. */
  readonly connectionTokens: readonly string[] | null;
  readonly bodyKind: 'none' | 'length' | 'chunked';
  readonly contentLength: number;
  /** The Upgrade header value, or null. */
  readonly upgrade: string | null;
  /** Set for Upgrade requests (WebSocket): bytes the client sent after the head. */
  readonly upgradeHead: Buffer | null;
  /** Whether the observer has seen the exchange (it is answered). */
  readonly finished: boolean;
  /** The client sent `Expect: 100-continue` and waits for a 100 before its body. */
  readonly expectContinue: boolean;
  /** The server's `limits.max_body`. */
  readonly maxBody: number;
  /** X-Forwarded-Proto and -Host values to send. */
  readonly forwardedProto: string;
  readonly forwardedHost: string;

  /** Outcome fields, read by the access log. */
  status: number;
  bytesOut: number;
  upstream: string | null;
  target: string | null;
  attempts: number;
  /** Some attempt was passed on to another target. */
  retried: boolean;

  /** Answers with the error's status (or breaks the response if it already started) and finishes. */
  fail(code: ErrorCode, cause?: unknown): void;
  /** The client's `tracestate`, passed on unchanged (null when none or no valid traceparent). */
  readonly tracestate: string | null;
  /** An attempt to `target` of `upstream` starts. */
  attemptStarted(upstream: string, target: { readonly origin: string }): AttemptObserver;
  /** The request is passed on to another attempt. */
  retrying(): void;
  /** A target reached max_fails through this request's attempt. */
  targetDisabled(target: string): void;
  /** An attempt failed on this host's side (no file descriptor): no target is blamed. */
  localFailure(code: LocalFailureCode, err: Error): void;
  /** The answer is complete before the request body: its rest is dropped within a bound. */
  dropUnreadBody(): void;
  /** The response was fully handed to the socket. */
  complete(): void;
  /** The client went away before the response was complete (499). */
  clientGone(): void;
  /** sluice ends the exchange with `code`, logged at once (an open tunnel keeps its 101). */
  cut(code: ErrorCode): void;
}
