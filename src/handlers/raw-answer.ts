/**
 * The answer a Node listener writes to an Upgrade request on the socket itself (`req.socket`): ws's
 * `handleUpgrade` writes its 101 there, and its refusals (400 for a bad Sec-WebSocket-Key) with
 * `socket.end(...)`. Node's response never sees those bytes, so the socket's `write` and `end` are
 * watched until they tell the answer's status, and for a 101 where its head ends:
 *
 *   write / end (not through `res`) ─► first 12 bytes, gathered across writes: `HTTP/1.x NNN`?
 *     ├─ not a status line ─────────► unwatched (status unknown: logged as the client leaving)
 *     ├─ 200-599 ───────────────────► the exchange's status; unwatched (bytes_out: every byte)
 *     └─ 101 ───► the exchange's status; watched on to the head's end (bytes_out: what follows)
 *
 * Only Upgrade requests are watched (serve-handler.ts): no other socket's methods are touched. The
 * socket's methods are put back once the answer is known, unless the listener has wrapped them over
 * ours meanwhile: then its wrapper stays, and ours only passes calls on.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What watching the socket needs from the exchange of its Upgrade request. */
export interface RawAnswerExchange {
  readonly res: ServerResponse;
  status: number;
  /** Moved past the head of a 101, whose bytes are not counted (as for a proxied tunnel). */
  wireBytesBefore: number;
  /** Set at the listener's first byte on the socket: sluice writes no answer of its own after it. */
  rawAnswer: boolean;
}

/** Watches what the listener of `x` writes on `socket` itself (HTTP/1.1 Upgrade requests only). */
export function watchRawAnswer(x: RawAnswerExchange, socket: Socket): void {
  const own = socket as Watched;
  own[kWatch] = {
    x,
    write: socket.write,
    ownWrite: Object.hasOwn(socket, 'write'),
    end: socket.end,
    ownEnd: Object.hasOwn(socket, 'end'),
    watching: true,
    ending: false,
    head: '',
  };
  socket.write = watchedWrite as Socket['write'];
  socket.end = watchedEnd as Socket['end'];
}

/**
 * The status of the status line `start` begins with (the first bytes written, latin1): 101 or
 * 200-599 once its 12 bytes are in, 0 while fewer are and they may still be one, -1 when they are
 * not one (any other status included).
 */
export function rawAnswerStatus(start: string): number {
  if (start.length < STATUS_LINE.length) {
    // Completed with a status line's own end, a prefix of one reads as one.
    return STATUS_LINE_RE.test(start + STATUS_LINE.slice(start.length)) ? 0 : -1;
  }
  const line = start.slice(0, STATUS_LINE.length);
  if (!STATUS_LINE_RE.test(line)) return -1;
  const status = Number(line.slice(9));
  return status === 101 || (status >= 200 && status <= 599) ? status : -1;
}

/** A status line's first 12 bytes, as one to complete a prefix with. */
const STATUS_LINE = 'HTTP/1.1 101';
const STATUS_LINE_RE = /^HTTP\/1\.[01] \d{3}$/;

/** The end of a head. */
const HEAD_END = '\r\n\r\n';

/**
 * Bytes of a 101's head looked through for its end (Node's own limit on a head, 16 KB). Past them,
 * its `bytes_out` counts the head too.
 */
const HEAD_MAX = 16 * 1024;

/** A watched socket's state: what its `write` and `end` were, and the head seen so far. */
interface Watch {
  readonly x: RawAnswerExchange;
  readonly write: Socket['write'];
  /** Whether `write` was the socket's own property (else the prototype's, put back by deleting ours). */
  readonly ownWrite: boolean;
  readonly end: Socket['end'];
  readonly ownEnd: boolean;
  watching: boolean;
  /** In `end()`, whose chunk was looked at already (should `end` write it through `write`). */
  ending: boolean;
  /** The answer's first bytes (latin1, up to HEAD_MAX): its status line, then a 101's head. */
  head: string;
}

const kWatch = Symbol('sluice.rawAnswer');
interface Watched {
  [kWatch]?: Watch;
}

function watchedWrite(this: Socket, ...args: unknown[]): boolean {
  const w = (this as Watched)[kWatch]!;
  if (w.watching && !w.ending) saw(this, w, args[0], args[1]);
  return (w.write as (...a: unknown[]) => boolean).apply(this, args);
}

function watchedEnd(this: Socket, ...args: unknown[]): Socket {
  const w = (this as Watched)[kWatch]!;
  if (w.watching && typeof args[0] !== 'function') saw(this, w, args[0], args[1]);
  w.ending = true;
  try {
    return (w.end as (...a: unknown[]) => Socket).apply(this, args);
  } finally {
    w.ending = false;
  }
}

/** Looks at `chunk`, written on `socket` (watched by `w`). */
function saw(socket: Socket, w: Watch, chunk: unknown, encoding: unknown): void {
  if (answerKnown(w.x, w, chunk, encoding)) unwatch(socket, w);
}

/** Takes `chunk` into the answer `w` watches: whether that answer is known now. */
function answerKnown(x: RawAnswerExchange, w: Watch, chunk: unknown, encoding: unknown): boolean {
  // The response is writing its head (Node's answer, or sluice's): the answer is not the listener's.
  if (x.res.headersSent) return true;
  const bytes = bytesOf(chunk, encoding);
  if (bytes === null || bytes.length === 0) return false;
  x.rawAnswer = true;
  const before = w.head.length;
  w.head += bytes.toString('latin1', 0, HEAD_MAX - before);
  if (x.status === 0) {
    const status = rawAnswerStatus(w.head);
    if (status <= 0) return status === -1;
    x.status = status;
    // Its bytes are counted from the first, head included, as for any answer of a listener.
    if (status !== 101) return true;
  }
  const end = w.head.indexOf(HEAD_END, Math.max(0, before - HEAD_END.length + 1));
  if (end === -1) return w.head.length >= HEAD_MAX;
  x.wireBytesBefore += end + HEAD_END.length;
  return true;
}

/** The bytes of a chunk given to `write` or `end` (null for what Node refuses anyway). */
function bytesOf(chunk: unknown, encoding: unknown): Buffer | null {
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  }
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return null;
}

/**
 * Stops watching `socket`: its methods are put back where nobody has wrapped them over ours. The
 * watch stays on the socket, for whoever kept ours (a wrapper over it, a bound copy) still calls it.
 */
function unwatch(socket: Socket, w: Watch): void {
  w.watching = false;
  w.head = '';
  const own = socket as Partial<Pick<Socket, 'write' | 'end'>>;
  if (socket.write === (watchedWrite as Socket['write'])) {
    if (w.ownWrite) socket.write = w.write;
    else delete own.write;
  }
  if (socket.end === (watchedEnd as Socket['end'])) {
    if (w.ownEnd) socket.end = w.end;
    else delete own.end;
  }
}
