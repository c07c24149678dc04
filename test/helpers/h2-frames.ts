/**
 * An HTTP/2 client session over TLS that also records the frames the server sent, as they came:
 * Node's client does not tell a stream the server reset (RST_STREAM) from one it closed itself
 * when the connection went, and reads a reset with NO_ERROR as a clean end.
 */
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** A frame the server sent: its type (RFC 9113 6), flags, stream, and a RST_STREAM's or GOAWAY's error code. */
export interface ServerFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly errorCode?: number;
}

/** Frame types and flags the tests look for. */
export const FRAME = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, GOAWAY: 0x7, END_STREAM: 0x1 } as const;

/** A client session, and the server's frames so far. */
export interface TappedSession {
  readonly session: http2.ClientHttp2Session;
  readonly frames: ServerFrame[];
  /** How stream `id` ended on the wire: END_STREAM, RST_STREAM with its code, or not yet. */
  ending(id: number): { endStream: true } | { rstCode: number } | null;
}

/** Connects to `port` on loopback (TLS, ALPN h2), recording the server's frames. */
export function tappedSession(port: number, ca: Buffer, servername: string): TappedSession {
  const frames: ServerFrame[] = [];
  const socket = tls.connect({ host: '127.0.0.1', port, ca, servername, ALPNProtocols: ['h2'] });
  const tap = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  // The server's preface is a SETTINGS frame: no preface to skip on this side.
  let buffered = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    buffered = Buffer.concat([buffered, data]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const type = buffered[3]!;
      const frame: ServerFrame = {
        type,
        flags: buffered[4]!,
        stream: buffered.readUInt32BE(5) & 0x7fffffff,
        ...(type === FRAME.RST_STREAM ? { errorCode: buffered.readUInt32BE(9) } : {}),
      };
      frames.push(frame);
      buffered = buffered.subarray(9 + length);
    }
    tap.push(data);
  });
  socket.on('end', () => tap.push(null));
  socket.on('close', () => tap.destroy());
  socket.on('error', (err) => tap.destroy(err));
  const session = http2.connect(`https://127.0.0.1:${port}`, { createConnection: () => tap });
  session.on('error', () => undefined);
  return {
    session,
    frames,
    ending(id) {
      for (const f of frames) {
        if (f.stream !== id) continue;
        if (f.type === FRAME.RST_STREAM) return { rstCode: f.errorCode! };
        if ((f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & FRAME.END_STREAM) !== 0)
          return { endStream: true };
      }
      return null;
    },
  };
}

/**
 * A client that writes frames as told and nothing else: no WINDOW_UPDATE unless asked (Node's
 * client opens its windows as it reads), so a test can keep the server's answers waiting.
 */
export interface RawH2Session {
  /** The server's frames so far. */
  readonly frames: ServerFrame[];
  /** Bytes of DATA the server sent on stream `id`. */
  dataBytes(id: number): number;
  /** A GET of `path` on stream `id` (HEADERS with END_STREAM). */
  get(id: number, path: string): void;
  /** A POST of `path` on stream `id` that sends `body` and not its end (HEADERS, then DATA). */
  postStarted(id: number, path: string, body: string): void;
  /** Resets stream `id` (RST_STREAM) with `code`. */
  reset(id: number, code: number): void;
  /**
   * The HEADERS of a GET of `path` on stream `id` with these `flags` (END_HEADERS 0x4, END_STREAM
   * 0x1): without END_HEADERS, a header block the client has not finished.
   */
  headers(id: number, path: string, flags: number): void;
  /** Writes `bytes` as they are (frames the test made with frame()). */
  send(bytes: Buffer): void;
  /** Opens the receive window of stream `id` (0: the connection's) by `bytes`. */
  windowUpdate(id: number, bytes: number): void;
  /** Stops reading the connection (the server's writes back up in the kernel), or reads on. */
  reading(on: boolean): void;
  /** Settles when the connection has closed. */
  readonly closed: Promise<void>;
  destroy(): void;
}

/** SETTINGS_INITIAL_WINDOW_SIZE (RFC 9113 6.5.2). */
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;

/** One HTTP/2 frame: its 9-octet head, then `payload`. */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * Connects to `port` (TLS, ALPN h2) with the client `settings` as [id, value] pairs. With
 * `halfOpen`, the client does not end its side when the server ends its own: only the server's
 * close (or destroy()) ends the connection.
 */
export async function rawH2Session(
  port: number,
  ca: Buffer,
  servername: string,
  settings: readonly (readonly [number, number])[],
  { halfOpen = false }: { halfOpen?: boolean } = {},
): Promise<RawH2Session> {
  // A TLSSocket reads allowHalfOpen from these options, which Node's types leave out.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
    host: '127.0.0.1',
    port,
    ca,
    servername,
    ALPNProtocols: ['h2'],
    allowHalfOpen: halfOpen,
  };
  const socket = tls.connect(options);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const pairs = Buffer.alloc(6 * settings.length);
  settings.forEach(([id, value], i) => {
    pairs.writeUInt16BE(id, i * 6);
    pairs.writeUInt32BE(value, i * 6 + 2);
  });
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(0x4, 0, 0, pairs)]));
  const frames: ServerFrame[] = [];
  const data = new Map<number, number>();
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const type = buffered[3]!;
      const flags = buffered[4]!;
      const stream = buffered.readUInt32BE(5) & 0x7fffffff;
      frames.push({
        type,
        flags,
        stream,
        ...(type === FRAME.RST_STREAM ? { errorCode: buffered.readUInt32BE(9) } : {}),
        ...(type === FRAME.GOAWAY ? { errorCode: buffered.readUInt32BE(13) } : {}),
      });
      if (type === FRAME.DATA) data.set(stream, (data.get(stream) ?? 0) + length);
      // The server's SETTINGS are acknowledged, as RFC 9113 6.5.3 requires.
      if (type === 0x4 && (flags & 0x1) === 0) socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0)));
      buffered = buffered.subarray(9 + length);
    }
  });
  // HPACK literal fields without indexing (RFC 7541 6.2.2), short enough for one-byte lengths.
  const literal = (name: string, value: string): Buffer =>
    Buffer.concat([
      Buffer.from([0, name.length]),
      Buffer.from(name),
      Buffer.from([value.length]),
      Buffer.from(value),
    ]);
  const head = (method: string, path: string): Buffer =>
    Buffer.concat([
      literal(':method', method),
      literal(':scheme', 'https'),
      literal(':path', path),
      literal(':authority', servername),
    ]);
  const headers = (id: number, path: string, flags: number): void => {
    socket.write(frame(FRAME.HEADERS, flags, id, head('GET', path)));
  };
  return {
    frames,
    dataBytes: (id) => data.get(id) ?? 0,
    // END_HEADERS | END_STREAM
    get: (id, path) => headers(id, path, 0x5),
    headers,
    send: (bytes) => void socket.write(bytes),
    postStarted(id, path, body) {
      // END_HEADERS only, and DATA without END_STREAM.
      socket.write(frame(FRAME.HEADERS, 0x4, id, head('POST', path)));
      socket.write(frame(FRAME.DATA, 0, id, Buffer.from(body)));
    },
    reset(id, code) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(code);
      socket.write(frame(FRAME.RST_STREAM, 0, id, payload));
    },
    windowUpdate(id, bytes) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(bytes);
      socket.write(frame(0x8, 0, id, payload));
    },
    reading(on) {
      if (on) socket.resume();
      else socket.pause();
    },
    closed,
    destroy: () => socket.destroy(),
  };
}
