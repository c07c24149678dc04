import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidResponseError,
  ResponseParser,
  type ResponseSink,
} from '../../src/proxy/h1-response-parser.js';

interface Parsed {
  status: number;
  reason: string;
  headers: string[];
  keepAlive: boolean;
  keepAliveMs: number;
  body: string;
  ended: boolean;
  extra: number;
  heads: number;
}

function sink(): { sink: ResponseSink; out: Parsed } {
  const out: Parsed = {
    status: 0,
    reason: '',
    headers: [],
    keepAlive: false,
    keepAliveMs: -1,
    body: '',
    ended: false,
    extra: -1,
    heads: 0,
  };
  return {
    out,
    sink: {
      onHead(status, reason, headers, keepAlive, keepAliveMs) {
        Object.assign(out, { status, reason, headers, keepAlive, keepAliveMs });
        out.heads++;
      },
      onBody(chunk) {
        out.body += chunk.toString('latin1');
      },
      onEnd(extra) {
        expect(out.ended).toBe(false);
        out.ended = true;
        out.extra = extra;
      },
    },
  };
}

/** Feeds `text` split at the given offsets. */
function parse(text: string, cuts: number[] = [], head = false): Parsed {
  const { sink: s, out } = sink();
  const p = new ResponseParser(s);
  p.reset(head);
  const bytes = Buffer.from(text, 'latin1');
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut <= at || cut >= bytes.length) continue;
    p.feed(bytes.subarray(at, cut));
    at = cut;
  }
  p.feed(bytes.subarray(at));
  return out;
}

function rejects(text: string, message: RegExp): void {
  expect(() => parse(text)).toThrow(InvalidResponseError);
  expect(() => parse(text)).toThrow(message);
}

const CHUNKED =
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A:  spaced \t\r\n\r\n' +
  '5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n';

describe('the upstream response parser', () => {
  it('reads a Content-Length response, its headers trimmed and in order', () => {
    const out = parse('HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-B: 1\r\nx-b: 2\r\n\r\nhello');
    expect(out).toMatchObject({
      status: 201,
      reason: 'Created',
      body: 'hello',
      ended: true,
      extra: 0,
      keepAlive: true,
    });
    expect(out.headers).toEqual(['Content-Length', '5', 'X-B', '1', 'x-b', '2']);
  });

  it('reads framing headers in any spelling and keeps field values as sent, trimmed', () => {
    for (const name of ['content-length', 'CONTENT-LENGTH', 'Content-length'])
      expect(parse(`HTTP/1.1 200 OK\r\n${name}: 2\r\n\r\nokX`).extra).toBe(1);
    expect(parse('HTTP/1.1 200 OK\r\nCONNECTION: Close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    const out = parse('HTTP/1.1 200 OK\r\nX-A:\t caf\xe9 \t\r\nX-B:\r\nContent-Length: 0\r\n\r\n');
    expect(out.headers).toEqual(['X-A', 'caf\xe9', 'X-B', '', 'Content-Length', '0']);
  });

  it('accepts exactly the names that are tokens and the values without control characters', () => {
    const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
    const bad = /[\x00-\x08\x0a-\x1f\x7f]/;
    const chars = fc.oneof(
      fc.constantFrom(
        'a',
        'Z',
        '-',
        '!',
        ' ',
        '\t',
        ':',
        '"',
        '(',
        '\x7f',
        '\x00',
        '\r',
        '\n',
        '\xe9',
        '\x1f',
      ),
      fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
    );
    const text = fc.array(chars, { maxLength: 12 }).map((cs) => cs.join(''));
    fc.assert(
      fc.property(text, text, (name, value) => {
        const head = `HTTP/1.1 200 OK\r\n${name}:${value}\r\nContent-Length: 0\r\n\r\n`;
        // A CRLF ends the line early, and the first colon ends the name: cases of their own above.
        fc.pre(!`${name}:${value}`.includes('\r\n') && !name.includes(':'));
        const valid = token.test(name) && !bad.test(value);
        let out: Parsed | null = null;
        try {
          out = parse(head);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidResponseError);
        }
        expect(out !== null).toBe(valid);
        if (out !== null)
          expect(out.headers.slice(0, 2)).toEqual([name, value.replace(/^[ \t]+|[ \t]+$/g, '')]);
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes chunked bodies with extensions and drops trailers', () => {
    const out = parse(CHUNKED);
    expect(out.body).toBe('helloabcdefghijklmnopqrstuvwxyz');
    expect(out.headers).toEqual(['Transfer-Encoding', 'chunked', 'X-A', 'spaced']);
    expect(out).toMatchObject({ ended: true, extra: 0 });
  });

  it('gives the same result however the bytes are split', () => {
    const length = 'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world';
    fc.assert(
      fc.property(fc.array(fc.nat(CHUNKED.length), { maxLength: 12 }), (cuts) => {
        expect(parse(CHUNKED, cuts)).toEqual(parse(CHUNKED));
        expect(parse(length, cuts)).toEqual(parse(length));
      }),
      { numRuns: 500 },
    );
    // Every single split point, exhaustively.
    for (let i = 1; i < CHUNKED.length; i++) expect(parse(CHUNKED, [i]).body).toBe(parse(CHUNKED).body);
  });

  it('reports bytes after the message as extra (the connection is then not reused)', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA').extra).toBe(5);
    expect(parse('HTTP/1.1 204 No Content\r\n\r\nX').extra).toBe(1);
    expect(parse(`${CHUNKED}junk`).extra).toBe(4);
  });

  it('has no body for HEAD, 204 and 304, whatever the length says', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', [], true)).toMatchObject({
      body: '',
      ended: true,
    });
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n')).toMatchObject({ ended: true });
    expect(parse('HTTP/1.1 204 No Content\r\n\r\n')).toMatchObject({ ended: true, status: 204 });
  });

  it('skips 1xx heads and relays the final one', () => {
    const out = parse(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx',
    );
    expect(out).toMatchObject({ status: 200, heads: 1, body: 'x', ended: true });
  });

  it('runs a body without a length to the end of the connection', () => {
    const { sink: s, out } = sink();
    const p = new ResponseParser(s);
    p.reset(false);
    p.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\nsome'));
    p.feed(Buffer.from(' more'));
    expect(p.untilClose).toBe(true);
    expect(out.ended).toBe(false);
    expect(p.finish()).toBe(true);
    expect(out).toMatchObject({ body: 'some more', ended: true });
  });

  it('says a cut-short response is incomplete', () => {
    const { sink: s } = sink();
    const p = new ResponseParser(s);
    p.reset(false);
    p.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    expect(p.finish()).toBe(false);
  });

  it('keeps connections alive by the HTTP version and Connection rules', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(false);
    expect(parse('HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n').keepAlive).toBe(
      true,
    );
    expect(
      parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n').keepAliveMs,
    ).toBe(5000);
  });

  it('accepts a status line without a reason phrase', () => {
    expect(parse('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n')).toMatchObject({ status: 200, reason: '' });
    expect(parse('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n')).toMatchObject({ status: 200, reason: '' });
  });

  it('refuses what could smuggle or confuse', () => {
    rejects(
      'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      /Content-Length and Transfer/,
    );
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /Transfer-Encoding/);
    rejects(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
      /Transfer-Encoding/,
    );
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /differing/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /Content-Length/);
    rejects('HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n', /Content-Length/);
    rejects('HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n', /header/);
    rejects('HTTP/1.1 200 OK\r\nBad Name: a\r\n\r\n', /header name/);
    rejects('HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n', /control character/);
    rejects('HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n', /control character/);
    rejects('HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n', /control character/);
    rejects('HTTP/2 200 OK\r\n\r\n', /status line/);
    rejects('HTTP/1.1 2000 OK\r\n\r\n', /status line/);
    rejects('HTTP/1.1 20a OK\r\n\r\n', /status code/);
    rejects('HTTP/1.1 099 Low\r\n\r\n', /status code/);
    rejects('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', /101/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /chunk size/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n', /CRLF/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n', /bare LF/);
    rejects('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n', /chunk size/);
    rejects(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17 * 1024)}\r\n\r\n`, /16 KiB/);
    rejects(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(17 * 1024)}`, /16 KiB/);
    rejects(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;${'e'.repeat(5000)}`, /chunk-size line/);
  });
});
