/**
 * The sample concurrent service, fetch style: waits 2 s, then answers with the request path.
 * A thousand concurrent requests finish together in about 2 s: the wait is a timer, not a thread.
 *
 *   npx sluice serve examples/slow-path.ts --port 3000
 */
const WAIT_MS = 2000;

export default {
  async fetch(request: Request): Promise<Response> {
    await new Promise((resolve) => setTimeout(resolve, WAIT_MS));
    return new Response(`${new URL(request.url).pathname}\n`, { headers: { 'content-type': 'text/plain' } });
  },
};
