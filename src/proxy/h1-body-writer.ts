/**
 * Writes a streamed request body (forward.ts's `streamRest`) to an upstream connection of the
 * proxy's own client (h1-client.ts), after the head, with back-pressure: the next chunk is pulled
 * only once the previous one is written, or the socket has drained; a target that stops reading
 * stalls the body, which `timeouts.send` bounds (the body's own timer), and a 1 GB upload keeps
 * memory flat.
 *
 * Framing is the head's: a Content-Length the client sent (the body must hold exactly that many
 * bytes: a different count would desynchronise the connection), else chunked. The bytes are those
 * undici wrote for the same body.
 */
import type { Socket } from 'node:net';

/**
 * A body that does not match its Content-Length. The client's parser (llhttp, nghttp2) holds a
 * body to its length, so this would be sluice's fault, not the target's: the code of a request
 * the client refuses to write (upstream-error.ts), a 500 that counts against no target.
 */
class BodyLengthError extends Error {
  readonly code = 'SLUICE_INVALID_REQUEST';
}

/** One streamed body going out on one connection. */
export class BodyWriter {
  readonly #socket: Socket;
  readonly #body: AsyncIterable<Buffer>;
  /** The Content-Length sent in the head, or -1: chunked. */
  readonly #length: number;
  readonly #done: (err: Error | null) => void;
  #stopped = false;
  /** Wakes the wait for a drain (stop() or the socket's close). */
  #wake: (() => void) | null = null;

  /**
   * `done` is called once, unless `stop()` came first: with null when the whole body is out, or
   * with the error that cut it short (thrown by the body: 413, timeouts.send, the client gone).
   */
  constructor(
    socket: Socket,
    body: AsyncIterable<Buffer>,
    length: number,
    done: (err: Error | null) => void,
  ) {
    this.#socket = socket;
    this.#body = body;
    this.#length = length;
    this.#done = done;
  }

  /** Starts writing (the head is out). */
  start(): void {
    this.#run().catch((err: unknown) => this.#finish(err instanceof Error ? err : new Error(String(err))));
  }

  /** Writes nothing more: the exchange ended, or its answer came (nginx then stops sending too). */
  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }

  /** Whether a pause now is the target's (not reading what was written), not the client's. */
  get waitingForTarget(): boolean {
    return this.#wake !== null;
  }

  async #run(): Promise<void> {
    const socket = this.#socket;
    let written = 0;
    // Leaving the loop early returns the body's iterator: its timers are cleared (forward.ts).
    for await (const chunk of this.#body) {
      if (this.#stopped || socket.destroyed) return;
      if (chunk.length === 0) continue;
      written += chunk.length;
      if (this.#length >= 0 && written > this.#length) {
        throw new BodyLengthError(`request body longer than its Content-Length ${this.#length}`);
      }
      if (!this.#write(chunk)) await this.#drain();
      if (this.#stopped || socket.destroyed) return;
    }
    if (this.#stopped || socket.destroyed) return;
    if (this.#length < 0) socket.write('0\r\n\r\n', 'latin1');
    else if (written !== this.#length) {
      throw new BodyLengthError(`request body of ${written} bytes, not its Content-Length ${this.#length}`);
    }
    this.#finish(null);
  }

  #finish(err: Error | null): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#done(err);
  }

  /** Writes a chunk (framed when chunked); false when the socket asks to wait for 'drain'. */
  #write(chunk: Buffer): boolean {
    const socket = this.#socket;
    if (this.#length >= 0) return socket.write(chunk);
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  /** Resolves on 'drain', on the socket's close, or on stop(). */
  #drain(): Promise<void> {
    const socket = this.#socket;
    return new Promise((resolve) => {
      const wake = () => {
        socket.off('drain', wake);
        socket.off('close', wake);
        this.#wake = null;
        resolve();
      };
      this.#wake = wake;
      socket.on('drain', wake);
      socket.on('close', wake);
    });
  }
}
