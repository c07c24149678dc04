/** What the request paths of the egress proxy share with the server that owns them. */
import type { Dispatcher } from 'undici';
import type { SlotSet } from '../core/slot-set.js';
import type { EgressLog } from './egress-log.js';
import type { LoopGuard } from './loop-guard.js';

/** Timeouts of the egress proxy, in milliseconds. */
export interface EgressTimeouts {
  /** To establish a TCP connection to an origin (DNS included): 504 after it. */
  readonly connectMs: number;
  /** From sending a request to the origin's response head: 504 after it. */
  readonly headersMs: number;
  /** Silence on a response body, a tunnel or an idle client connection: closed after it. */
  readonly idleMs: number;
}

/** The defaults: 10 s to connect, 60 s to a response head, 5 min of silence. */
export const EGRESS_TIMEOUTS: EgressTimeouts = Object.freeze({
  connectMs: 10_000,
  headersMs: 60_000,
  idleMs: 5 * 60_000,
});

/** A request or tunnel in progress, which the drain cuts when `shutdown_timeout` runs out. */
export interface EgressInFlight {
  /**
   * Logs it now as cut (499 with `code`), then closes both sides. Left to the closing sockets and
   * agent, a tunnel was logged after the worker had flushed its log and exited (so never), and a
   * request as the origin's failure (`SLUICE_E_UPSTREAM_RESET`).
   */
  cut(code: 'SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT'): void;
}

/** The shared state a request or tunnel needs. */
export interface EgressContext {
  readonly log: EgressLog;
  readonly loop: LoopGuard;
  readonly timeouts: EgressTimeouts;
  /** One keep-alive agent for every origin. */
  readonly agent: Dispatcher;
  /** Requests and tunnels not yet logged: each is in here from its policy check to its line. */
  readonly inFlight: SlotSet<EgressInFlight>;
}
