/**
 * Requests that a browser sends for a page of another origin. Without tokens the admin listener
 * serves whoever reaches it on loopback, and a page of any site open in a browser on that host
 * reaches it: it cannot read the answers (no CORS), but `<img src=".../debug/pprof/profile?seconds=60">`
 * kept the profiler of a worker busy (other profiles refused 409) and its CPU sampling. Browsers say
 * where a request comes from (Fetch Metadata, `Origin`); clients that are no browser (curl,
 * Prometheus, `sluice` itself) send neither. With tokens there is nothing to refuse: a browser never
 * adds a bearer token by itself.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * `Sec-Fetch-Site` values of requests the admin listener serves: its own dashboard (`same-origin`)
 * and an address typed or bookmarked (`none`). `same-site` is another port of the same host (any
 * local web app, or a site sluice proxies on 127.0.0.1) and is refused with `cross-site`.
 */
const SERVED_FETCH_SITES = new Set(['same-origin', 'none']);

/**
 * Whether a request comes from a page of another origin than the admin listener's `http://HOST`
 * (`host` the request's Host, checked to be loopback): by its `Sec-Fetch-Site`, or else by an
 * `Origin` (sent by browsers without Fetch Metadata, and by all with a POST) that is not that one.
 */
export function isCrossSite(headers: IncomingHttpHeaders, host: string): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && !SERVED_FETCH_SITES.has(site.toLowerCase())) return true;
  const origin = headers.origin;
  if (origin === undefined) return false;
  // `null` (a sandboxed frame, a file: page) and anything else that is no http origin is another.
  if (!URL.canParse(origin) || !URL.canParse(`http://${host}`)) return true;
  const from = new URL(origin);
  return from.protocol !== 'http:' || from.host !== new URL(`http://${host}`).host;
}
