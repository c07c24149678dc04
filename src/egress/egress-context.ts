/** What the request paths of the egress proxy share with the server that owns them. */
import type { Dispatcher } from 'undici';
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

/** The shared state a request or tunnel needs. */
export interface EgressContext {
  readonly log: EgressLog;
  readonly loop: LoopGuard;
  readonly timeouts: EgressTimeouts;
  /** One keep-alive agent for every origin. */
  readonly agent: Dispatcher;
}
