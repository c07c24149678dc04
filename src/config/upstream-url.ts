/** Upstream URLs: `proxy.url` (an origin with an optional base path) and target URLs (an origin only). */
import { redactUrl } from '../core/redact.js';

/** What a valid upstream URL gives. */
export interface UpstreamUrl {
  /** `scheme://host[:port]`, default port omitted; the implicit upstream's name and target label. */
  readonly origin: string;
  /** The path without its trailing slash; `''` for none or `/`. */
  readonly basePath: string;
}

/** Parses an absolute http(s) URL with a host and without credentials, query or fragment. */
export function parseUpstreamUrl(text: string): UpstreamUrl | { error: string } {
  // Shown in problems, which are logged: a password in the URL is not.
  const shown = JSON.stringify(redactUrl(text));
  if (text.trim() !== text) return { error: `${shown} has white space around it; write it without` };
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) {
    return {
      error: `${shown} is not an absolute URL; write it as http://${redactUrl(text).replace(/^\/+/, '')}`,
    };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { error: `${shown} is not a valid URL` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { error: `${shown} must use http:// or https://, not ${url.protocol}//` };
  }
  if (url.hostname === '') return { error: `${shown} has no host` };
  // An `@` anywhere ends userinfo to whoever shows this URL (core/redact.ts): `http://u:1/pw@host`,
  // a password with a `/`, parses as host `u`, port 1 and path `/pw@host`.
  if (url.username !== '' || url.password !== '' || text.includes('@')) {
    return {
      error: `${shown} must not hold credentials; set an Authorization header with set_headers instead (an @ in a path is written %40)`,
    };
  }
  if (url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#')) {
    return { error: `${shown} must not have a query or fragment` };
  }
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') };
}
