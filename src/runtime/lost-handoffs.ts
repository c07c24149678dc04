/**
 * Connections the primary passed to this worker that never arrived, answered so the primary goes on.
 *
 * In round-robin mode the primary accepts each connection and passes its descriptor to a worker
 * over IPC, then waits for the worker's answer before it passes that worker another. A worker at
 * its `nofile` limit cannot take the descriptor: the kernel drops it (MSG_CTRUNC) and Node's IPC
 * answers NODE_HANDLE_NACK, which the primary ignores for a raw handle (it resends only sockets).
 * The round-robin queue then waited for that worker's answer for ever. Measured with the worker at
 * 128 descriptors and 300 idle connections: every later connection sat in the primary's queue,
 * unanswered, until the process was restarted, and nothing was logged.
 *
 * The message itself does arrive, with the sequence number the primary waits on. This answers it as
 * the worker's cluster code would have, "accepted": the primary closes its copy, so that client
 * sees its connection closed, and passes this worker the next one. Answering "not accepted" would
 * pass the connection on instead, but with one worker back to this one at once: a loop for as long
 * as the shortage lasts. Relies on Node's cluster messages (`newconn`, `ack`), unchanged from
 * Node 16 to 24.
 */

interface HandleMessage {
  readonly cmd?: unknown;
  readonly msg?: { readonly cmd?: unknown; readonly act?: unknown; readonly seq?: unknown };
}

export interface LostHandoffEvents {
  /** The first connection lost of a shortage. */
  readonly onShort: () => void;
  /** A connection arrived again after `lost` were lost. */
  readonly onRecovered: (lost: number) => void;
}

export class LostHandoffs {
  readonly #events: LostHandoffEvents;
  #lost = 0;

  constructor(events: LostHandoffEvents) {
    this.#events = events;
  }

  start(): void {
    process.on('internalMessage', this.#onInternal);
  }

  stop(): void {
    process.off('internalMessage', this.#onInternal);
  }

  readonly #onInternal = (message: HandleMessage | null, handle: unknown): void => {
    if (message?.cmd !== 'NODE_HANDLE') return;
    const inner = message.msg;
    if (handle) {
      if (this.#lost > 0 && inner?.act === 'newconn') {
        this.#events.onRecovered(this.#lost);
        this.#lost = 0;
      }
      return;
    }
    if (inner?.cmd !== 'NODE_CLUSTER' || inner.act !== 'newconn' || typeof inner.seq !== 'number') return;
    process.send?.({ cmd: 'NODE_CLUSTER', ack: inner.seq, accepted: true });
    if (this.#lost++ === 0) this.#events.onShort();
  };
}
