/**
 * autocannon's client ignores `Connection: close` in an answer: it writes the next request on the
 * same socket at once, which RFC 9112 section 9.6 forbids ("a client that receives a close
 * connection option MUST cease sending requests on that connection"). Against a server that closes
 * keep-alive connections (after N requests per connection, while draining on a reload, or because
 * the request asked for it with `--no-keepalive`) that measures the client's bug: the request goes
 * into a closing socket (a reset), or the server answers it with an error. So each client is made to
 * honour it, as browsers, undici and curl do: after such an answer the next request goes out on a
 * new connection.
 */
import type { AutocannonClient } from './autocannon.js';

/** Makes one autocannon client open a new connection after an answer with `Connection: close`. */
export function honourConnectionClose(client: AutocannonClient): void {
  let closing = false;
  client.on('headers', (info) => {
    if (info.shouldKeepAlive === false) closing = true;
  });
  const doRequest = client._doRequest;
  client._doRequest = function (this: AutocannonClient, ...args: unknown[]) {
    if (closing) {
      closing = false;
      // Destroys this socket and connects again; the new connection sends the next request.
      this._resetConnection();
      return undefined;
    }
    return doRequest.apply(this, args);
  };
}
