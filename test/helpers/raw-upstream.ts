/**
 * A scripted upstream on a raw TCP (or TLS) socket, for answers no HTTP server library would
 * write: it records what each connection received and answers by request path.
 */
import net from 'node:net';
import tls from 'node:tls';

/** One connection of a raw upstream, as it went. */
export interface RawConnection {
  /** Bytes received. */
  received: number;
  /** Request heads received, in order. */
  heads: string[];
  closed: boolean;
  /** TLS only: the client resumed an earlier session. */
  resumed: boolean;
}

/** A running raw upstream. */
export interface RawUpstream {
  readonly port: number;
  readonly connections: RawConnection[];
  close(): Promise<void>;
}

/**
 * Starts an upstream that by default reads each request whole (its Content-Length or chunked body)
 * and writes `answer(path)` (then closes, unless `keepOpen`). `early` answers as soon as the head
 * is in, and keeps reading (`tail`, when given, follows the answer 300 ms later). `reset` resets
 * the connection once body bytes arrive; `silent` reads and never answers. With `tls` (a PEM
 * certificate and key) it speaks TLS.
 */
export async function rawUpstream(
  answer: (path: string) => string,
  opts: {
    mode?: 'whole' | 'early' | 'reset' | 'silent';
    keepOpen?: boolean;
    tail?: string;
    tls?: { cert: Buffer; key: Buffer };
  } = {},
): Promise<RawUpstream> {
  const connections: RawConnection[] = [];
  const serve = (socket: net.Socket) => {
    const conn: RawConnection = {
      received: 0,
      heads: [],
      closed: false,
      resumed: socket instanceof tls.TLSSocket && socket.isSessionReused(),
    };
    connections.push(conn);
    let buf = Buffer.alloc(0);
    let head = '';
    let need = -1; // body bytes still expected; -2: chunked
    socket.on('error', () => undefined);
    socket.on('close', () => {
      conn.closed = true;
    });
    const reply = (path: string) => {
      if (opts.keepOpen) socket.write(answer(path), 'latin1');
      else socket.end(answer(path), 'latin1');
      const tail = opts.tail;
      if (tail !== undefined) setTimeout(() => socket.writable && socket.write(tail, 'latin1'), 300);
    };
    socket.on('data', (d: Buffer) => {
      conn.received += d.length;
      if (opts.mode === 'reset' && head !== '') {
        socket.resetAndDestroy();
        return;
      }
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (head === '') {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          head = buf.toString('latin1', 0, end);
          buf = buf.subarray(end + 4);
          conn.heads.push(head);
          const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
          need = /\r\ntransfer-encoding: *chunked/i.test(head) ? -2 : cl ? Number(cl[1]) : 0;
          if (opts.mode === 'early') reply(head.split(' ')[1] ?? '/');
          if (opts.mode === 'reset' && buf.length > 0) {
            socket.resetAndDestroy();
            return;
          }
        }
        if (opts.mode !== undefined && opts.mode !== 'whole') return;
        // The test bodies are all `x`: the last chunk is the first `0\r\n\r\n`.
        const done = need === -2 ? buf.indexOf('0\r\n\r\n') : need <= buf.length ? need : -1;
        if (done === -1) return;
        const path = head.split(' ')[1] ?? '/';
        buf = buf.subarray(need === -2 ? done + 5 : need);
        head = '';
        reply(path);
      }
    });
  };
  const server = opts.tls === undefined ? net.createServer(serve) : tls.createServer(opts.tls, serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
      }),
  };
}
