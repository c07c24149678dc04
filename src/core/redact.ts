/**
 * Secrets out of what sluice shows: `GET /api/config`, log lines and config problems. A URL keeps
 * everything but its password and the values of credential-like query parameters (Redis takes
 * `?password=`); a header keeps its name, and its value when the name does not suggest a credential.
 */

/** What replaces a secret. */
export const REDACTED = '[redacted]';

/** Header names whose values are credentials: cookies, and names that say so (`auth` takes Authorization and Proxy-Authorization). */
const SECRET_HEADER = /^(?:set-)?cookie$|auth|token|secret|passw|api[-_]?key|credential|session|signature/i;

/** Query parameters whose values are credentials. */
const SECRET_PARAM = /passw|secret|token|api[-_]?key|auth|credential|signature|^(?:key|pass|pwd|sig)$/i;

/** True when a header of this name may carry a credential. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/**
 * `text` with the password and secret query values of a URL replaced; other text as it is. Text
 * shaped like a URL that does not parse as one (a typo in a config: `redis//:pw@host`) loses what
 * lies between `//` and an `@`, where userinfo would be.
 */
export function redactUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Only for text shaped like a URL: other text (a respond body) is no URL and kept as written.
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:?\/\//.test(text)) return text;
    return text.replace(/^([^/@]*\/\/)[^@/]*@/, '$1redacted@');
  }
  let changed = false;
  // Without brackets, which a URL would percent-encode.
  if (url.password !== '') {
    url.password = 'redacted';
    changed = true;
  }
  for (const key of [...url.searchParams.keys()]) {
    if (SECRET_PARAM.test(key)) {
      url.searchParams.set(key, 'redacted');
      changed = true;
    }
  }
  // Unchanged text is returned as written, not as the URL parser would normalise it.
  return changed ? url.toString() : text;
}
