/**
 * The sample concurrent service as a Node request listener: waits 2 s, then answers with the
 * request path.
 *
 *   npx sluice serve examples/slow-path-listener.ts --port 3000
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const WAIT_MS = 2000;

export default function slowPath(req: IncomingMessage, res: ServerResponse): void {
  setTimeout(() => {
    const path = (req.url ?? '/').split('?')[0];
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${path}\n`);
  }, WAIT_MS);
}
