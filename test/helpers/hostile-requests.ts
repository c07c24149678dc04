/**
 * Hostile requests, as raw bytes: what BEHAVIOUR.md section 5 says must be refused before
 * anything reaches an upstream, and request-smuggling pairs (a front request that hides a second
 * one if the proxy and the upstream disagree about where it ends). Sent over raw sockets by the
 * strictness integration tests (in-process) and the hostile-input e2e tests (the built CLI).
 */

/** The Host line most requests here carry. */
export const H = 'Host: a.test\r\n';

/** Requests that must be refused with 400 before anything is forwarded (BEHAVIOUR.md section 5). */
export const BAD_REQUESTS: Record<string, string> = {
  'Content-Length with Transfer-Encoding (CL.TE)': `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding with Content-Length (TE.CL)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
  'two equal Content-Length headers': `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
  'two different Content-Length headers': `POST / HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx`,
  'a Content-Length list': `POST / HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\nx`,
  'a signed Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`,
  'a hexadecimal Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: 0x1\r\n\r\nx`,
  'Transfer-Encoding: gzip (final coding not chunked)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nx`,
  'Transfer-Encoding: chunked, gzip': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding: xchunked (obfuscated)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
  'two Transfer-Encoding headers (TE.TE)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
  'space before the colon of Transfer-Encoding': `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding on HTTP/1.0': `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'a bad chunk size': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n`,
  'a control character in a chunk extension': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;\x01\r\nx\r\n0\r\n\r\n`,
  'obs-fold (a header line starting with a space)': `GET / HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`,
  'whitespace between a header name and the colon': `GET / HTTP/1.1\r\n${H}X-A : b\r\n\r\n`,
  'a header name outside tchar': `GET / HTTP/1.1\r\n${H}X(A): b\r\n\r\n`,
  'an empty header name': `GET / HTTP/1.1\r\n${H}: b\r\n\r\n`,
  'NUL in a header value': `GET / HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`,
  'a bare CR in a header value': `GET / HTTP/1.1\r\n${H}X-A: b\rc\r\n\r\n`,
  'bare LF line endings': 'GET / HTTP/1.1\nHost: a.test\n\n',
  'an absolute-form request target': `GET http://evil.test/x HTTP/1.1\r\n${H}\r\n`,
  'an asterisk-form request target': `OPTIONS * HTTP/1.1\r\n${H}\r\n`,
  'CONNECT on a gateway listener': 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n',
  'a missing Host on HTTP/1.1': 'GET / HTTP/1.1\r\n\r\n',
  'two Host headers': `GET / HTTP/1.1\r\n${H}Host: b.test\r\n\r\n`,
  'a Host with a slash': 'GET / HTTP/1.1\r\nHost: a.test/evil\r\n\r\n',
  'a Host with an at sign': 'GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n',
  'a Host with two colons': 'GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n',
  'a Host with a port over 65535': 'GET / HTTP/1.1\r\nHost: a.test:99999\r\n\r\n',
  'a Host with a port that is not a number': 'GET / HTTP/1.1\r\nHost: a.test:x\r\n\r\n',
  'a Host with an unclosed bracket': 'GET / HTTP/1.1\r\nHost: [\r\n\r\n',
  'a Host with an empty label': 'GET / HTTP/1.1\r\nHost: a..test\r\n\r\n',
  'a Host with two trailing dots': 'GET / HTTP/1.1\r\nHost: a.test..\r\n\r\n',
  'a Host that is one dot': 'GET / HTTP/1.1\r\nHost: .\r\n\r\n',
  'a fragment in the request target': `GET /secret#x HTTP/1.1\r\n${H}\r\n`,
  'HTTP/2.0 in an HTTP/1 request line': `GET / HTTP/2.0\r\n${H}\r\n`,
  'Transfer-Encoding: gzip, chunked (a coding sluice does not apply)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding: identity, chunked': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`,
  'HTTP/0.9': 'GET /\r\n\r\n',
  'HTTP/1.2': `GET / HTTP/1.2\r\n${H}\r\n`,
  'a space inside the path': `GET /a b HTTP/1.1\r\n${H}\r\n`,
  'a control character in the path': `GET /a\x01b HTTP/1.1\r\n${H}\r\n`,
  'an invalid method token': `G(T / HTTP/1.1\r\n${H}\r\n`,
  'a bad percent escape in the path': `GET /a%zz HTTP/1.1\r\n${H}\r\n`,
  // An upstream in C may end the path at the NUL (nginx refuses it as well).
  'an encoded NUL in the path': `GET /a%00b HTTP/1.1\r\n${H}\r\n`,
  'a path climbing above the root': `GET /a/../../etc/passwd HTTP/1.1\r\n${H}\r\n`,
};

/**
 * More of section 5, beyond the table above: other spellings of the same faults, each refused
 * with 400. (Two spaces between the parts of the request line are not among them: RFC 9112
 * section 3 lets a server split the line on any run of whitespace, and Node does.)
 */
export const MORE_BAD_REQUESTS: Record<string, string> = {
  'a negative Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nx`,
  'an empty Content-Length': `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\nx`,
  'a Content-Length with a decimal point': `POST / HTTP/1.1\r\n${H}Content-Length: 1.0\r\n\r\nx`,
  'a Content-Length with two numbers': `POST / HTTP/1.1\r\n${H}Content-Length: 1 2\r\n\r\nxx`,
  'Transfer-Encoding: chunked given twice in one header': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding: "chunked" (quoted)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n`,
  'Transfer-Encoding: chunk (truncated)': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunk\r\n\r\n0\r\n\r\n`,
  'a vertical tab before the Transfer-Encoding value': `POST / HTTP/1.1\r\n${H}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n`,
  'a chunk size overflowing 64 bits': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n`,
  'a negative chunk size': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n`,
  'a chunk longer than its size': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\nxyz\r\n0\r\n\r\n`,
  'a chunk size with a space before its CRLF': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n`,
  'a chunk size line ending in a bare LF': `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n`,
  'obs-fold with a tab': `GET / HTTP/1.1\r\n${H}X-A: b\r\n\tc\r\n\r\n`,
  'obs-fold on the first header line': 'GET / HTTP/1.1\r\n Host: a.test\r\n\r\n',
  'a space inside a header name': `GET / HTTP/1.1\r\n${H}X A: b\r\n\r\n`,
  'a header line without a colon': `GET / HTTP/1.1\r\n${H}X-A\r\n\r\n`,
  'a bare LF inside a header value': `GET / HTTP/1.1\r\n${H}X-A: b\nc\r\n\r\n`,
  'DEL in a header value': `GET / HTTP/1.1\r\n${H}X-A: b\x7fc\r\n\r\n`,
  'an authority-form target on GET': `GET a.test:80 HTTP/1.1\r\n${H}\r\n`,
  'a Host with a space': 'GET / HTTP/1.1\r\nHost: a test\r\n\r\n',
  'a lower-case protocol name': `GET / http/1.1\r\n${H}\r\n`,
  'a request line without a version': `GET / \r\n${H}\r\n`,
  'a NUL in the request line': `GET /\x00 HTTP/1.1\r\n${H}\r\n`,
};

/** The request a smuggling pair tries to hide; the upstream must never see it. */
export const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n';

/** A chunked body that carries `text` in one chunk, then the last chunk. */
const chunkOf = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n0\r\n\r\n`;

/**
 * Request-smuggling pairs (PortSwigger's CL.TE, TE.CL and TE.TE families, and duplicate
 * Content-Length): a front request `/front` whose framing is ambiguous, followed on the same
 * connection by SMUGGLED or with SMUGGLED inside its body. A front end that reads one framing
 * and an upstream that reads the other would deliver SMUGGLED as a request of its own. Every
 * pair must be refused (400, closed) with nothing forwarded.
 */
export const SMUGGLING_PAIRS: Record<string, string> = {
  'CL.TE: Content-Length covers the smuggled request, chunked ends before it': `POST /front HTTP/1.1\r\n${H}Content-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
  'TE.CL: the smuggled request inside a chunk, Content-Length stops before it': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: a second Transfer-Encoding with a junk coding': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: a space before the colon': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: xchunked': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: chunked followed by identity': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: identity followed by chunked, with Content-Length': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: identity, chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: mixed case, with Content-Length': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: cHuNkEd\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: obs-fold before chunked': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: a vertical tab before chunked': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding:\x0bchunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: a quoted coding': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: "chunked"\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: an underscore instead of the dash': `POST /front HTTP/1.1\r\n${H}Content-Length: ${Buffer.byteLength(chunkOf(SMUGGLED))}\r\nTransfer_Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE.TE: a bare LF before the Transfer-Encoding line': `POST /front HTTP/1.1\r\n${H}Content-Length: 4\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'TE on HTTP/1.0 with Content-Length': `POST /front HTTP/1.0\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n${chunkOf(SMUGGLED)}`,
  'CL.CL: two Content-Length, the second covering the smuggled request': `POST /front HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL.CL: a Content-Length list': `POST /front HTTP/1.1\r\n${H}Content-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'CL.CL: a Content-Length with a trailing junk digit group': `POST /front HTTP/1.1\r\n${H}Content-Length: 0 ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
  'a chunk extension hiding the chunk size': `POST /front HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0;\x00${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
  'a bare LF ending the last chunk': `POST /front HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\n\r\n${SMUGGLED}`,
};
