import http2 from 'node:http2';

/** How long the answer of a stopped HTTP/2 upload may take to leave before the stream is cancelled. */
export const H2_RESET_GRACE_MS = 1000;

/**
 * On a stream whose upload is stopped: true, or, once it was reset before its answer left, the
 * bytes of the answer still queued then.
 */
const kStopping = Symbol('sluice.stopUpload');

type Stopping = { [kStopping]?: true | number };

/**
 * Stops the upload of an HTTP/2 stream answered before its client sent the whole body (a refusal,
 * a 413 for a body without Content-Length, request_timeout's 408): once the answer is out the stream
 * is reset with NO_ERROR, which RFC 9113 section 8.1 lets a server send after a complete response,
 * as nginx does. Nothing reads the rest of such a body, so its flow-control window never opens
 * again: without the reset the client waited in its write for ever. A client that also keeps its
 * receive window shut never lets the answer out: after `H2_RESET_GRACE_MS` the stream is reset
 * with CANCEL, answer or not. Called twice, the second call does nothing.
 */
export function stopUpload(stream: http2.ServerHttp2Stream): void {
  const marked = stream as Stopping;
  if (marked[kStopping] || stream.closed || stream.destroyed || stream.state.remoteClose) return;
  marked[kStopping] = true;
  const reset = (code: number): void => {
    if (!stream.closed && !stream.destroyed) stream.close(code);
  };
  if (stream.writableFinished) {
    reset(http2.constants.NGHTTP2_NO_ERROR);
    return;
  }
  stream.once('finish', () => reset(http2.constants.NGHTTP2_NO_ERROR));
  // A code other than NO_ERROR resets at once, without waiting for the answer to leave.
  const grace = setTimeout(() => {
    if (stream.closed || stream.destroyed) return;
    // (Node's close empties the queue.)
    marked[kStopping] = stream.writableLength;
    stream.close(http2.constants.NGHTTP2_CANCEL);
  }, H2_RESET_GRACE_MS);
  grace.unref();
  stream.once('close', () => clearTimeout(grace));
}

/**
 * The bytes of its answer `stream` still held when stopUpload reset it (its client kept its window
 * shut), or null when it did not.
 */
export function unsentAtUploadStop(stream: http2.ServerHttp2Stream): number | null {
  const mark = (stream as Stopping)[kStopping];
  return typeof mark === 'number' ? mark : null;
}
