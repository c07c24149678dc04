/**
 * Log lines to a file descriptor, batched, in writes that never split a line. Several worker
 * processes share stdout (a pipe to Docker, a socket to journald, a terminal) or append to one file.
 * A request never waits on log I/O: lines are queued, and when the destination falls more than
 * `MAX_PENDING` bytes behind, new lines are dropped and counted (`dropped`, reported once) rather
 * than growing memory without bound. How lines are written depends on the destination:
 *
 * - **Regular file**: a write lands whole (Linux holds the file's position lock for the length of a
 *   write), so batches are large (256 KiB, up to 1 MiB per writev) and go through the thread pool,
 *   one write in flight: writing a single 4 KiB batch per event-loop turn fell behind at 14k lines/s.
 * - **Pipe, terminal or other device** (stdout under Docker, a console): the descriptor is opened
 *   again through /proc/self/fd as a private, non-blocking one, and each batch of whole lines, at
 *   most PIPE_BUF (4096 bytes), is one synchronous write() of its own. A pipe writes at most
 *   PIPE_BUF all-or-nothing, while a larger write may stop part-way when the pipe is full or let
 *   another writer in while it waits for room, cutting a line in two. Non-blocking, a full pipe or a
 *   terminal nobody reads (Ctrl-S, `docker run -t` with a stalled reader) answers EAGAIN at once and
 *   the batch waits first in the queue for `RETRY_AFTER_MS`; the event loop never blocks. The flag
 *   is set on a private open file because O_NONBLOCK on the shared one would be every process's
 *   (and any of them may reset it). A write of one page costs a few microseconds, less than a
 *   thread-pool round trip.
 * - **Socket** (journald's stdout stream), or when /proc cannot open the descriptor again (no /proc,
 *   or after the worker dropped privileges): writev of up to 64 KiB through the thread pool, one in
 *   flight, as for files. A Unix stream socket queues a write of that size as one unit, so lines stay
 *   whole; EAGAIN or a short write (someone made the shared descriptor non-blocking, as Node does
 *   when `process.stdout` is used) puts the rest back first in the queue for `RETRY_AFTER_MS`.
 *
 * A full disk first shows as a short write that ends mid-line, then as ENOSPC. The line cut in two
 * is finished before anything else once there is room again (`#tornHead`): dropping its rest glued
 * the next line written onto the half in the file, losing both. After a reopen the rest of a line
 * cut in the old file is dropped instead, so the new file starts on a line. On a pipe, terminal or
 * socket an error means the reader is gone; the rest of a cut line goes with the other lost lines,
 * as the next reader (a FIFO opened again) must start on a line too.
 *
 * (pino's SonicBoom batches without regard to line ends, which could interleave half-lines across
 * processes.)
 *
 * Lines are encoded into preallocated buffers as they come, not concatenated into a batch string:
 * a string batch lived until its write (up to 100 ms), so V8 promoted every line to the old
 * generation and a mark-compact ran each second under load; encoding at once lets each line
 * die young. Measured with the access log on a file, `wrk -c64` through the proxy: 50–57 → 47 µs
 * CPU per request.
 */
import fs from 'node:fs';
import { dirname } from 'node:path';
import { makeDirectoriesSync } from '../core/make-directories.js';

/** Batch (buffer) size on a pipe, socket or terminal: PIPE_BUF, which a pipe writes atomically. */
const PIPE_BATCH = 4096;
/** Batch (buffer) size on a regular file. */
const FILE_BATCH = 256 * 1024;
/** Most bytes in one writev to a regular file. */
const FILE_WRITE = 1024 * 1024;
/** Most bytes in one writev to a socket. */
const SOCKET_WRITE = 64 * 1024;
const MAX_PENDING = 16 * 1024 * 1024;
const FLUSH_AFTER_MS = 100;
/** How lines reach the destination (see the top of this file). */
type Mode = 'file' | 'sync' | 'socket';

/** Wait before writing again to a full pipe, terminal or socket (EAGAIN), or a full disk after a cut line. */
const RETRY_AFTER_MS = 5;
/** Longest `flushSync` waits in all for a full pipe or socket before it drops what is left. */
const SYNC_WAIT_MS = 1000;
/** Written batch buffers kept for reuse. */
const SPARE_BATCHES = 4;

/** Reports a destination failure (once per failure streak). */
export type WriteErrorReport = (err: Error) => void;

/** A line-atomic, batched writer on a file descriptor. */
export class LineWriter {
  /** The descriptor given, or opened from the path. */
  #fd: number;
  /** The descriptor written to: `#fd`, or a private non-blocking one opened again from it (`#setUp`). */
  #out!: number;
  #mode!: Mode;
  readonly #path: string | null;
  readonly #onError: WriteErrorReport;
  /** Bytes per batch: whole lines only, at most this many (one longer line goes alone). */
  #batchBytes!: number;
  /** Full batches waiting for the destination, oldest first. */
  readonly #batches: Buffer[] = [];
  /** The batch being filled, and how much of it is. */
  #current: Buffer | null = null;
  /**
   * Written batch buffers kept for reuse. A fresh 256 KiB allocation per batch cost page faults and
   * fragmented glibc's heap: with the access log on a file at 20k lines/s a worker spent 65–73 µs
   * per proxied request and held 99–107 MB RSS; with reuse 47 µs and 88 MB (85 MB without a log).
   */
  readonly #spare: Buffer[] = [];
  #used = 0;
  #queuedBytes = 0;
  /** A thread-pool write (file, socket) is in flight. */
  #writing = false;
  #timer: NodeJS.Timeout | null = null;
  /** A full destination is waited for. */
  #retry: NodeJS.Timeout | null = null;
  #failing = false;
  /**
   * The first queued batch starts mid-line: a short write cut that line (set by `#requeue`). Its
   * rest must be written next, to the same file, or the line stays cut and the next one is glued on.
   */
  #tornHead = false;
  /** Times the file was opened again (`reopen`): a write in flight meanwhile went to the old one. */
  #reopened = 0;
  /** Lines are being dropped because the queue is full (reported once until it halves). */
  #behind = false;
  /** Waiting for everything queued to be written (`drain`). */
  #drained: (() => void)[] = [];
  /** Lines dropped because the destination could not keep up or failed. */
  dropped = 0;

  /** Writes to `fd`, or appends to `path` (opened now, reopened by `reopen`). */
  constructor(target: number | string, onError: WriteErrorReport) {
    this.#path = typeof target === 'string' ? target : null;
    this.#onError = onError;
    this.#fd = typeof target === 'number' ? target : openAppend(target);
    this.#setUp();
  }

  /** Picks the mode for `#fd`, and the descriptor to write to. */
  #setUp(): void {
    if (isRegularFile(this.#fd)) {
      this.#mode = 'file';
      this.#out = this.#fd;
      this.#batchBytes = FILE_BATCH;
      return;
    }
    this.#batchBytes = PIPE_BATCH;
    // A path this writer opened is its own open file, non-blocking already.
    const own = this.#path !== null ? this.#fd : reopenNonBlocking(this.#fd);
    this.#mode = own === null ? 'socket' : 'sync';
    this.#out = own ?? this.#fd;
  }

  /** Queues one line (it must end with a newline). */
  write(line: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most lines need no exact count.
    const room = this.#current === null ? 0 : this.#batchBytes - this.#used;
    const bytes = line.length * 3 <= room ? line.length : Buffer.byteLength(line);
    if (this.#queuedBytes + bytes > MAX_PENDING) {
      this.dropped++;
      if (!this.#behind) {
        this.#behind = true;
        this.#onError(
          new Error(
            `the destination is ${MAX_PENDING / 1024 / 1024} MiB behind; new lines are dropped until it catches up`,
          ),
        );
      }
      return false;
    }
    // Caught up to half the limit: a new overflow is reported again.
    if (this.#behind && this.#queuedBytes < MAX_PENDING / 2) this.#behind = false;
    if (bytes > room) {
      if (this.#used > 0) this.#seal();
      this.#current =
        bytes <= this.#batchBytes
          ? (this.#spare.pop() ?? Buffer.allocUnsafe(this.#batchBytes))
          : Buffer.allocUnsafe(bytes);
      this.#used = 0;
    }
    const written = this.#current!.write(line, this.#used);
    this.#used += written;
    this.#queuedBytes += written;
    if (this.#batches.length > 0) this.#flush();
    // Armed whatever is queued: a write in flight may finish with this batch still unsealed.
    if (this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        if (this.#used > 0) this.#seal();
        this.#flush();
      }, FLUSH_AFTER_MS);
      this.#timer.unref();
    }
    return true;
  }

  /** Closes the batch being filled. */
  #seal(): void {
    this.#batches.push(this.#current!.subarray(0, this.#used));
    this.#current = null;
    this.#used = 0;
  }

  #flush(): void {
    if (this.#writing || this.#retry !== null) return;
    if (this.#mode === 'sync') this.#writeBatches();
    else if (this.#batches.length > 0) this.#writeAsync(this.#mode === 'file' ? FILE_WRITE : SOCKET_WRITE);
    if (!this.#writing && this.#retry === null && this.#batches.length === 0 && this.#used === 0) {
      for (const done of this.#drained.splice(0)) done();
    }
  }

  /** Pipe, terminal or device: each batch in a write of its own, now, until one does not fit. */
  #writeBatches(): void {
    for (let batch = this.#batches[0]; batch !== undefined; batch = this.#batches[0]) {
      let written: number;
      try {
        written = fs.writeSync(this.#out, batch);
      } catch (err) {
        if (isFull(err)) {
          this.#waitForRoom();
          return;
        }
        // The reader is gone: the rest of a cut line goes too (counted in `batch`), see the top.
        this.#tornHead = false;
        this.#batches.shift();
        this.#queuedBytes -= batch.length;
        this.#failed(err as Error, [batch]);
        continue;
      }
      this.#failing = false;
      this.#batches.shift();
      this.#queuedBytes -= batch.length;
      if (written < batch.length) {
        // Not a pipe (a terminal may take part of a write): the rest goes first, once there is room.
        this.#requeue([batch], written);
        return;
      }
      this.#recycle(batch);
    }
  }

  /** File or socket: as many batches as fit in `limit` bytes in one writev, in the thread pool. */
  #writeAsync(limit: number): void {
    const buffers: Buffer[] = [];
    let size = 0;
    while (this.#batches.length > 0 && (buffers.length === 0 || size + this.#batches[0]!.length <= limit)) {
      const bytes = this.#batches.shift()!;
      buffers.push(bytes);
      size += bytes.length;
    }
    this.#queuedBytes -= size;
    this.#writing = true;
    const reopened = this.#reopened;
    fs.writev(this.#out, buffers, null, (err, written) => {
      this.#writing = false;
      // Per write, not per line: a cut line is looked at only when a write fails or stops short.
      const moved = reopened !== this.#reopened;
      if (err && isFull(err)) {
        this.#requeue(buffers, 0);
        if (moved) this.#dropTornHead();
        return;
      }
      if (err) {
        if (this.#tornHead && this.#mode === 'file' && !moved) {
          // A full disk (or a failing file): keep the rest of the cut line, bounded by one line, and
          // try it again before the lines after it; the whole lines written with it are lost.
          const head = buffers[0]!;
          const rest = head.subarray(0, head.indexOf(10) + 1);
          this.#failed(err, [head.subarray(rest.length), ...buffers.slice(1)]);
          for (const b of buffers.slice(1)) this.#recycle(b);
          this.#batches.unshift(rest);
          this.#queuedBytes += rest.length;
          this.#waitForRoom();
          return;
        }
        this.#tornHead = false;
        this.#failed(err, buffers);
        for (const b of buffers) this.#recycle(b);
      } else {
        this.#failing = false;
        if (written < size) {
          // A full socket, or a file whose disk filled: the retry says which.
          this.#requeue(buffers, written);
          if (moved) this.#dropTornHead();
          return;
        }
        this.#tornHead = false;
        for (const b of buffers) this.#recycle(b);
      }
      this.#flush();
    });
  }

  /**
   * Puts back what a write did not take (all of `buffers` after their first `written` bytes), first
   * in the queue, and writes again after `RETRY_AFTER_MS`. Only the buffers written whole are
   * reused: the others are still to be written. Notes whether the write stopped mid-line.
   */
  #requeue(buffers: readonly Buffer[], written: number): void {
    const rest: Buffer[] = [];
    // Nothing written: the first batch is the same as before, and so is whether it starts mid-line.
    if (written > 0) this.#tornHead = false;
    for (const b of buffers) {
      if (written >= b.length) {
        written -= b.length;
        this.#recycle(b);
      } else {
        if (written > 0) {
          this.#tornHead = b[written - 1] !== 10;
          rest.push(b.subarray(written));
        } else rest.push(b);
        written = 0;
      }
    }
    for (const b of rest) this.#queuedBytes += b.length;
    this.#batches.unshift(...rest);
    this.#waitForRoom();
  }

  #waitForRoom(): void {
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#flush();
    }, RETRY_AFTER_MS);
    // A destination nobody reads must not keep the process alive, unless someone waits on drain().
    if (this.#drained.length === 0) this.#retry.unref();
  }

  /**
   * Drops the rest of a line cut in a file opened before: written to the new file it would start
   * with half a line. The whole lines after it stay queued.
   */
  #dropTornHead(): void {
    if (!this.#tornHead) return;
    this.#tornHead = false;
    const head = this.#batches[0]!;
    const end = head.indexOf(10) + 1;
    this.dropped++;
    this.#queuedBytes -= end;
    if (end === head.length) this.#batches.shift();
    else this.#batches[0] = head.subarray(end);
  }

  /** Counts what a failed write lost; reports once per failure streak. */
  #failed(err: Error, lost: readonly Buffer[]): void {
    if (!this.#failing) this.#onError(err);
    this.#failing = true;
    for (const b of lost) this.dropped += countLines(b);
  }

  /** Keeps a written batch's buffer for reuse, when it is a whole batch buffer of the current size. */
  #recycle(batch: Buffer): void {
    const whole = batch.buffer;
    if (
      this.#spare.length < SPARE_BATCHES &&
      batch.byteOffset === 0 &&
      whole.byteLength === this.#batchBytes
    ) {
      this.#spare.push(Buffer.from(whole, 0, whole.byteLength));
    }
  }

  /**
   * Resolves once everything queued is written. Before exit, this comes first: `flushSync` alone
   * could overtake a write still in flight and put its lines out of order.
   */
  drain(): Promise<void> {
    if (this.#used > 0) this.#seal();
    this.#flush();
    if (!this.#writing && this.#retry === null && this.#batches.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained.push(resolve);
      this.#retry?.ref();
      this.#flush();
    });
  }

  /** Writes everything queued, synchronously (a last resort before exit; see `drain`). */
  flushSync(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#retry !== null) clearTimeout(this.#retry);
    this.#timer = null;
    this.#retry = null;
    if (this.#used > 0) this.#seal();
    const deadline = Date.now() + SYNC_WAIT_MS;
    for (let batch = this.#batches.shift(); batch !== undefined; batch = this.#batches.shift()) {
      this.#queuedBytes -= batch.length;
      if (!writeAllSync(this.#out, batch, deadline)) this.dropped += countLines(batch);
    }
    this.#tornHead = false;
  }

  /**
   * Reopens the file (after logrotate moved it); a no-op for a plain descriptor. Returns why the
   * file could not be opened again, or null. Then lines go on to the file open before, as nginx
   * keeps its old file when a reopen fails: the moved file still takes them, where stdout (the
   * start's fallback) would mix them into the application log.
   */
  reopen(): Error | null {
    if (this.#path === null) return null;
    const old = this.#fd;
    try {
      this.#fd = openAppend(this.#path);
    } catch (err) {
      return err as Error;
    }
    if (this.#used > 0) this.#seal(); // a batch sized for the old descriptor goes out as it is
    this.#reopened++;
    // A write in flight decides when it ends; else the queue starts with the rest of a cut line.
    if (!this.#writing) this.#dropTornHead();
    this.#setUp();
    this.#spare.length = 0;
    this.#failing = false;
    fs.close(old, () => undefined);
    return null;
  }

  /** The file written to, or null for a descriptor given. */
  get path(): string | null {
    return this.#path;
  }
}

function openAppend(path: string): number {
  makeDirectoriesSync(dirname(path));
  // Non-blocking matters only for a FIFO: its open fails at once (ENXIO) without a reader rather
  // than hanging the start, and its writes answer EAGAIN when full. A regular file ignores it.
  const { O_WRONLY, O_APPEND, O_CREAT, O_NONBLOCK } = fs.constants;
  return fs.openSync(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0o666);
}

/**
 * A private, non-blocking open file on what `fd` refers to (a pipe, terminal or device), opened
 * again through /proc; null for a socket (ENXIO), without /proc, or when not allowed (a worker that
 * dropped privileges may not open root's pipe). Node has no fcntl to set O_NONBLOCK on `fd` itself,
 * and setting it there would change it for every process sharing the descriptor.
 */
function reopenNonBlocking(fd: number): number | null {
  const opened = preopened.get(fd);
  if (opened !== undefined) return opened;
  const { O_WRONLY, O_NONBLOCK, O_NOCTTY } = fs.constants;
  try {
    return fs.openSync(`/proc/self/fd/${fd}`, O_WRONLY | O_NONBLOCK | O_NOCTTY);
  } catch {
    return null;
  }
}

/** Private descriptors opened before a privilege drop, by the descriptor they stand for. */
const preopened = new Map<number, number | null>();

/**
 * Opens the private non-blocking descriptor for `fd` now, while the process may still open its
 * own /proc entries: once a worker has dropped root, /proc/self/fd is root's and the open fails,
 * and lines would go the socket way (thread pool, up to 64 KiB per write) on a pipe.
 */
export function preopenForLogs(fd: number): void {
  if (preopened.has(fd) || isRegularFile(fd)) return;
  preopened.set(fd, reopenNonBlocking(fd));
}

/** Lines in a batch (each ends with a newline). */
function countLines(batch: Buffer): number {
  let n = 0;
  for (let i = batch.indexOf(10); i !== -1; i = batch.indexOf(10, i + 1)) n++;
  return n;
}

/** A non-blocking pipe or socket had no room. */
function isFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EAGAIN' || code === 'EWOULDBLOCK';
}

/**
 * Writes all of `bytes`, waiting (blocked, 1 ms at a time, until `deadline`) while a pipe or
 * socket is full. False when it could not.
 */
function writeAllSync(fd: number, bytes: Buffer, deadline: number): boolean {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += fs.writeSync(fd, bytes, offset);
    } catch (err) {
      if (!isFull(err) || Date.now() >= deadline) return false;
      Atomics.wait(SLEEP, 0, 0, 1);
    }
  }
  return true;
}
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

/** Whether `fd` is a regular file (else a pipe, socket, terminal or device). */
function isRegularFile(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isFile();
  } catch {
    return false;
  }
}
