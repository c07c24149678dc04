/**
 * Log lines to a file descriptor, batched and asynchronous, in writes that never split a line:
 * each write is at most 4096 bytes (PIPE_BUF) and ends at a line end. Several worker processes
 * share stdout (a pipe to journald or Docker) or append to one file; writes of up to PIPE_BUF
 * bytes to a pipe are atomic, and O_APPEND writes to a file land whole, so lines from different
 * workers never interleave. (pino's SonicBoom batches without regard to line ends, which could
 * interleave half-lines across processes.)
 *
 * A request never waits on log I/O: lines are queued, at most one write is in flight, and when
 * the destination cannot keep up beyond `MAX_PENDING` bytes, new lines are dropped and counted
 * rather than growing memory without bound.
 */
import fs from 'node:fs';
import { dirname } from 'node:path';

const ATOMIC_WRITE = 4096;
const MAX_PENDING = 16 * 1024 * 1024;
const FLUSH_AFTER_MS = 100;

/** Reports a destination failure (once per failure streak). */
export type WriteErrorReport = (err: Error) => void;

/** A line-atomic, batched writer on a file descriptor. */
export class LineWriter {
  #fd: number;
  readonly #path: string | null;
  readonly #onError: WriteErrorReport;
  #pending = '';
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  #failing = false;
  /** Lines dropped because the destination could not keep up or failed. */
  dropped = 0;

  /** Writes to `fd`, or appends to `path` (opened now, reopened by `reopen`). */
  constructor(target: number | string, onError: WriteErrorReport) {
    this.#path = typeof target === 'string' ? target : null;
    this.#onError = onError;
    this.#fd = typeof target === 'number' ? target : openAppend(target);
  }

  /** Queues one line (it must end with a newline). */
  write(line: string): boolean {
    if (this.#pending.length + line.length > MAX_PENDING) {
      this.dropped++;
      return false;
    }
    this.#pending += line;
    if (this.#pending.length >= ATOMIC_WRITE) this.#flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#flush();
      }, FLUSH_AFTER_MS);
      this.#timer.unref();
    }
    return true;
  }

  #flush(): void {
    if (this.#writing || this.#pending === '') return;
    const chunk = takeChunk(this.#pending);
    this.#pending = this.#pending.slice(chunk.chars);
    this.#writing = true;
    fs.write(this.#fd, chunk.bytes, 0, chunk.bytes.length, null, (err) => {
      this.#writing = false;
      if (err) {
        if (!this.#failing) this.#onError(err);
        this.#failing = true;
        this.dropped++;
      } else {
        this.#failing = false;
      }
      if (this.#pending.length >= ATOMIC_WRITE || (this.#pending !== '' && this.#timer === null))
        this.#flush();
    });
  }

  /** Writes everything queued, synchronously (before exit). */
  flushSync(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#pending !== '') {
      const chunk = takeChunk(this.#pending);
      this.#pending = this.#pending.slice(chunk.chars);
      try {
        fs.writeSync(this.#fd, chunk.bytes);
      } catch {
        this.dropped++;
      }
    }
  }

  /** Reopens the file (after logrotate moved it); a no-op for a plain descriptor. */
  reopen(): void {
    if (this.#path === null) return;
    const old = this.#fd;
    try {
      this.#fd = openAppend(this.#path);
      this.#failing = false;
      fs.close(old, () => undefined);
    } catch (err) {
      this.#onError(err as Error);
    }
  }
}

function openAppend(path: string): number {
  fs.mkdirSync(dirname(path), { recursive: true });
  return fs.openSync(path, 'a');
}

/** The longest prefix of whole lines within ATOMIC_WRITE bytes (or one longer line alone). */
function takeChunk(pending: string): { bytes: Buffer; chars: number } {
  // JSON lines are ASCII unless a path or message carries other characters: measure in bytes.
  let end = Math.min(pending.length, ATOMIC_WRITE);
  let bytes = Buffer.from(pending.slice(0, end));
  while (bytes.length > ATOMIC_WRITE) {
    end = Math.floor(end / 2);
    bytes = Buffer.from(pending.slice(0, end));
  }
  if (end < pending.length) {
    const lastNewline = pending.lastIndexOf('\n', end - 1);
    if (lastNewline >= 0) {
      end = lastNewline + 1;
    } else {
      // One line longer than ATOMIC_WRITE: written alone, whole.
      const nl = pending.indexOf('\n');
      end = nl === -1 ? pending.length : nl + 1;
    }
    bytes = Buffer.from(pending.slice(0, end));
  }
  return { bytes, chars: end };
}
