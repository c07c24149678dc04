/**
 * The admin listener across reloads. A reload that keeps the address updates the running
 * listener in place (tokens rotate without a dropped connection); one that moves it binds the new
 * address before the reload commits, so an address that cannot be bound (in use, a typo) refuses the
 * whole reload and the old listener keeps serving. The old listener then closes gracefully: the
 * `POST /api/reload` that asked for the change gets its answer, as does every request in flight,
 * and any request that comes after the commit on a connection still open is refused (503).
 */
import type { ResolvedAdmin } from '../config/types.js';
import { type AdminServer, refuseExposed } from './admin-server.js';

/** How long requests in flight on a replaced admin listener get to finish. */
const REPLACED_GRACE_MS = 10_000;

/** A prepared admin change: applied by `commit`, undone by `abort`. */
export interface AdminChange {
  commit(): void;
  abort(): Promise<void>;
}

export class AdminSlot {
  readonly #make: (settings: ResolvedAdmin) => AdminServer;
  #server: AdminServer | null = null;

  /** `make` builds a listener (not yet bound) for the given settings. */
  constructor(make: (settings: ResolvedAdmin) => AdminServer) {
    this.#make = make;
  }

  /** The running listener, if any. */
  get server(): AdminServer | null {
    return this.#server;
  }

  /** Binds the listener of the first config; throws (SLUICE_E_RUNTIME_LISTEN) when it cannot. */
  async start(settings: ResolvedAdmin | null): Promise<void> {
    if (settings === null) return;
    const server = this.#make(settings);
    await server.listen();
    this.#server = server;
  }

  /**
   * Readies the change from `current` to `next` settings: binds a new address now. Throws when it
   * cannot, having changed nothing.
   */
  async prepare(current: ResolvedAdmin | null, next: ResolvedAdmin | null): Promise<AdminChange> {
    if (next !== null) refuseExposed(next);
    const running = this.#server;
    if (running !== null && current !== null && next !== null && current.listen.key === next.listen.key) {
      return { commit: () => running.update(next), abort: async () => undefined };
    }
    let fresh: AdminServer | null = null;
    if (next !== null) {
      fresh = this.#make(next);
      await fresh.listen();
    }
    return {
      commit: () => {
        this.#server = fresh;
        // From the commit on, the old address refuses what it has not started answering: its open
        // connections must not outlive the tokens (or the listener) the reload took away.
        running?.retire(next);
        void running?.close(REPLACED_GRACE_MS);
      },
      abort: async () => {
        await fresh?.close();
      },
    };
  }

  /** Stops the listener, closing its connections. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    await server?.close();
  }
}
