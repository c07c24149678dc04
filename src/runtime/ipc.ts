/** The messages between the primary and its workers (Node's cluster IPC channel, JSON). */
import type { MetricsJson } from '../admin/dashboard-stats.js';
import type { ResolvedConfig } from '../config/types.js';
import type { TlsFileCopiesWire } from '../core/tls-file-copies.js';
import type { Ban } from '../security/ban-list.js';

/** What a worker reports about itself. */
export interface WorkerStats {
  readonly pid: number;
  /** Requests answered since the worker started. */
  readonly served: number;
  /** Open client connections. */
  readonly connections: number;
  /** The worker's view of its upstreams (requests in flight, passive failures). */
  readonly upstreams: readonly Record<string, unknown>[];
  /** The addresses it listens on. */
  readonly addresses: readonly { key: string; host: string; port: number }[];
  /** Whether its Redis is up ('off' without `state.redis`; absent from workers before it). */
  readonly redis?: 'up' | 'down' | 'off';
}

/** Primary → worker. */
export type ToWorker =
  | {
      readonly type: 'start';
      readonly config: ResolvedConfig;
      readonly reusePort: boolean;
      readonly workers: number;
      /**
       * The node's bans, in force before the worker listens: sent after `ready`, they left a
       * worker started after a crash or by a rolling reload serving banned clients meanwhile.
       */
      readonly bans: readonly Ban[];
      /**
       * For a worker that replaces a dead one, the node's copies of its TLS files: what it loads a
       * certificate from when the files cannot be used as it starts (tls-file-copies.ts); null
       * for the workers that apply a config (start, roll), whose files must load.
       */
      readonly tlsCopies: TlsFileCopiesWire | null;
    }
  | { readonly type: 'ban'; readonly ban: Ban }
  | { readonly type: 'unban'; readonly address: string }
  /** Every ban of a scope lifted: a reload removed its `ban:` rule. */
  | { readonly type: 'unban-scope'; readonly scope: string }
  | { readonly type: 'reload'; readonly id: number; readonly config: ResolvedConfig }
  | { readonly type: 'shutdown'; readonly deadlineMs: number }
  /**
   * The answer to `drained`: the worker is out of the shared sockets' rotation and every
   * connection handed to it is ahead of this message on the channel, so it may exit.
   */
  | { readonly type: 'exit' }
  | { readonly type: 'reopen-logs' }
  | { readonly type: 'health'; readonly upstream: string; readonly origin: string; readonly up: boolean }
  | {
      readonly type: 'target';
      readonly id: number;
      readonly action: 'drain' | 'enable';
      readonly upstream: string;
      /**
       * The target by URL: a worker started by a rolling reload lists the next config's targets,
       * where a place in the primary's list may be another target, or none.
       */
      readonly origin: string;
    }
  | { readonly type: 'query'; readonly id: number }
  | { readonly type: 'metrics'; readonly id: number }
  | { readonly type: 'profile'; readonly id: number; readonly kind: 'cpu' | 'heap'; readonly seconds: number }
  /** The caller of a CPU profile left: end it now. */
  | { readonly type: 'profile-cancel' }
  | { readonly type: 'handles'; readonly id: number };

/** Worker → primary. */
export type FromWorker =
  /** Sent once the worker listens for messages: anything sent earlier would be lost. */
  | { readonly type: 'hello' }
  | { readonly type: 'ready' }
  /** Sent once, at the worker's first client connection: it is serving (see crash-tracker.ts). */
  | { readonly type: 'serving' }
  /** Sent as the worker starts to load a handler module: a start that hangs names it. */
  | { readonly type: 'loading'; readonly module: string }
  | {
      readonly type: 'start-failed';
      readonly error: string;
      readonly code: string | null;
      readonly hint: string | null;
    }
  | {
      readonly type: 'reloaded';
      readonly id: number;
      readonly error: string | null;
      /** The error's code and hint when it has them (absent from workers before them). */
      readonly code?: string | null;
      readonly hint?: string | null;
    }
  | { readonly type: 'target-result'; readonly id: number; readonly origin: string | null }
  | { readonly type: 'stats'; readonly id: number; readonly stats: WorkerStats }
  | { readonly type: 'metrics'; readonly id: number; readonly metrics: MetricsJson }
  /** A draining worker has closed its listeners and served what it had; it waits for `exit`. */
  | { readonly type: 'drained' }
  /** Sent by a worker as it exits after a drain: its counters' final values. */
  | { readonly type: 'final-metrics'; readonly metrics: MetricsJson }
  | {
      readonly type: 'profile';
      readonly id: number;
      readonly data: string | null;
      readonly error: string | null;
    }
  | { readonly type: 'handles'; readonly id: number; readonly handles: Record<string, unknown> }
  /** Answers a ban rule counts, batched: [scope, client address, count]. */
  | { readonly type: 'strikes'; readonly batch: readonly (readonly [string, string, number])[] };

/** Whether an IPC message is one of ours (the channel also carries Node's internal messages). */
export function isFromWorker(message: unknown): message is FromWorker {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string'
  );
}
