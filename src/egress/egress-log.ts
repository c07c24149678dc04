/**
 * The egress log lines, with their field names in one place. One line per proxied request or
 * tunnel, written when it ends: `egress` (info; warn when the origin could not be reached or broke
 * off), `egress denied` (warn) for a policy's refusal, and `egress refused` (warn) for a request
 * refused before any policy was asked (not a proxy request, a malformed target, a drain, a head the
 * HTTP parser refused). A line is one pino call with a flat object: nothing else is
 * allocated or formatted on the request path.
 */
import type { EgressDenyReason } from './egress-policy.js';

/** What the egress proxy logs to: a pino `Logger` fits. */
export interface EgressLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** One allowed request or tunnel, once it ended. */
export interface EgressRecord {
  readonly source: string;
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly policy: string;
  /** The status sent to the client (200 for an established tunnel), 0 when none was. */
  readonly status: number;
  /** Bytes from the client to the origin (request body, or tunnel upstream). */
  readonly bytes_sent: number;
  /** Bytes from the origin to the client (response body, or tunnel downstream). */
  readonly bytes_received: number;
  readonly duration_ms: number;
  /**
   * The code of a failure (502, 504, a broken stream, 400), `client_gone` when the client hung up,
   * SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT when `shutdown_timeout` cut it, or null.
   */
  readonly error: string | null;
  /** The id of an error answer, as sent in `x-sluice-error-id`, or null. */
  readonly error_id: string | null;
}

/** A refused request. */
export interface EgressDenial {
  readonly source: string;
  readonly host: string;
  readonly port: number;
  readonly method: string;
  /** `source`: no policy lists the client; `host`: none of its policies lists the target; `loop`. */
  readonly reason: EgressDenyReason | 'loop';
  readonly error_id: string;
}

/** A request refused before any policy was asked. */
export interface EgressRefusal {
  readonly source: string;
  /** `-` when the parser refused the head: no request was read. */
  readonly method: string;
  /** The request target as sent (at most 256 characters); empty when the parser refused the head. */
  readonly target: string;
  /**
   * The code of the answer (`SLUICE_E_CLIENT_EGRESS_NOT_PROXY`, `…_TARGET`, `SLUICE_E_RUNTIME_DRAINING`,
   * and the parser's `SLUICE_E_CLIENT_BAD_REQUEST`, `…_URI_TOO_LONG`, `…_HEADERS_TOO_LARGE`, `…_TIMEOUT`).
   */
  readonly code: string;
  readonly error_id: string;
}

/** Logs an allowed request or tunnel. */
export function logEgress(log: EgressLog, record: EgressRecord): void {
  // A client that hangs up is routine; a failure on the way to or from the origin is not, nor is
  // a cut at shutdown_timeout (work lost: the deadline may want raising).
  if (record.error !== null && record.error !== 'client_gone') log.warn(record, 'egress');
  else log.info(record, 'egress');
}

/** Logs a refused request. */
export function logDenied(log: EgressLog, denial: EgressDenial): void {
  log.warn(denial, 'egress denied');
}

/** Logs a request refused before any policy was asked; a long target is cut (it is the client's text). */
export function logRefused(log: EgressLog, refusal: EgressRefusal): void {
  const target = refusal.target.length > 256 ? `${refusal.target.slice(0, 256)}…` : refusal.target;
  log.warn({ ...refusal, target }, 'egress refused');
}
