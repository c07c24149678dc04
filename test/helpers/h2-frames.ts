/**
 * An HTTP/2 client session over TLS that also records the frames the server sent, as they came:
 * Node's client does not tell a stream the server reset (RST_STREAM) from one it closed itself
 * when the connection went, and reads a reset with NO_ERROR as a clean end.
 */
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** A frame the server sent: its type (RFC 9113 6), flags, stream, and a RST_STREAM's error code. */
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
