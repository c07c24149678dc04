/**
 * Secrets out of what sluice shows: `GET /api/config`, log lines and config problems. A URL keeps
 * everything but its password and the values of credential-like query parameters (Redis takes
 * `?password=`); a header keeps its name, and its value when the name does not suggest a credential.
 */

/** What replaces a secret. */
export const REDACTED = '[redacted]';

/** What replaces a secret inside a URL: without brackets, which a URL would percent-encode. */
const URL_REDACTED = 'redacted';

/** Header names whose values are credentials: cookies, and names that say so (`auth` takes Authorization and Proxy-Authorization). */
const SECRET_HEADER = /^(?:set-)?cookie$|auth|token|secret|passw|api[-_]?key|credential|session|signature/i;

/** Query parameters whose values are credentials. */
const SECRET_PARAM = /passw|secret|token|api[-_]?key|auth|credential|signature|^(?:key|pass|pwd|sig)$/i;

/**
 * The scheme of a URL and the slashes after it, as written, typos included (`redis://`, `redis:/`,
 * `redis:`, `redis//`), or `//` alone; followed by no white space, so that prose (`Note: ...`) is
 * none.
 */
const URL_HEAD = /^(?:[A-Za-z][A-Za-z0-9+.-]*(?::[/\\]*|[/\\]{2,})|[/\\]{2})(?=\S)/;

/** Userinfo with no scheme before it (`user:pw@host`, `:pw@host`): a user name, a colon, no white space. */
const BARE_USERINFO = /^[\w.~%!$&'*+,;=-]*:\S*@/;

/** One `key=value` of a query, with the character before it. */
const QUERY_PAIR = /([?&])([^=&#]*)=([^&#]*)/g;

/** True when a header of this name may carry a credential. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADER.test(name);
}

/**
 * `text` with the userinfo and secret query values of a URL replaced; other text as it is, and what
 * is kept as written, not as a URL parser would normalise it. The userinfo ends at the last `@`, as
 * URL parsers take it when several are written: a password may hold `/`, `?`, `#` or `%` (which
 * leave the text no valid URL, or one whose host is a piece of the password), so the userinfo is not
 * taken to end where a URL's host would. A path or query with an `@` is shown as if what precedes
 * it were userinfo: the two cannot be told apart, and showing too little is the safe mistake. Of the
 * userinfo only the user name is kept (up to the first `:`, which a user name cannot hold), and only
 * after `//`; userinfo without a `:` is all hidden, being a token or a password as often as a name.
 */
export function redactUrl(text: string): string {
  // Leading white space and controls, which URL parsers skip (`new URL(' redis://…')` parses).
  const lead = text.slice(0, leadingSpace(text));
  const url = text.slice(lead.length);
  const head = URL_HEAD.exec(url)?.[0] ?? '';
  // Only text shaped like a URL: other text (a respond body) is no URL and kept as written.
  if (head === '' && !BARE_USERINFO.test(url)) return text;
  const rest = url.slice(head.length);
  const at = rest.lastIndexOf('@');
  if (at <= 0) return lead + head + redactQuery(rest, false);
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  const shown =
    colon === -1 || !/[/\\]{2}$/.test(head) ? URL_REDACTED : `${userinfo.slice(0, colon)}:${URL_REDACTED}`;
  // That `@` may be one of a secret query value's (`?password=p@ss`): hidden to the value's end,
  // or what follows the `@` was shown as if it were the host.
  const valueEnd = secretValueEndAround(rest, at);
  if (valueEnd !== -1) return `${lead}${head}${shown}${redactQuery(rest.slice(valueEnd), true)}`;
  // A `?` in what was taken for userinfo may have begun the query: its pairs after the `@` are read as such.
  return `${lead}${head}${shown}@${redactQuery(rest.slice(at + 1), userinfo.includes('?'))}`;
}

/** How many characters `text` starts with that a URL parser skips: C0 controls, spaces, a BOM. */
function leadingSpace(text: string): number {
  let i = 0;
  while (i < text.length && (text.charCodeAt(i) <= 0x20 || /\s/.test(text[i]!))) i++;
  return i;
}

/**
 * Where the value of a secret query parameter that holds position `at` of `rest` ends, or -1. The
 * query is taken to begin at the first `?`, which may be a password's: a pair found there is
 * hidden all the same (hiding too much is the safe mistake).
 */
function secretValueEndAround(rest: string, at: number): number {
  const start = rest.indexOf('?');
  if (start === -1 || start > at) return -1;
  for (const m of rest.slice(start).matchAll(QUERY_PAIR)) {
    const [, before, key, value] = m as unknown as [string, string, string, string];
    const valueStart = start + m.index + before.length + key.length + 1;
    const valueEnd = valueStart + value.length;
    if (valueStart <= at && at < valueEnd && SECRET_PARAM.test(decodeQueryKey(key))) return valueEnd;
  }
  return -1;
}

/** `rest` with the values of secret query parameters replaced; `inQuery` when it starts inside the query. */
function redactQuery(rest: string, inQuery: boolean): string {
  const start = inQuery ? 0 : rest.indexOf('?');
  if (start === -1) return rest;
  const query = rest
    .slice(start)
    .replace(QUERY_PAIR, (pair, before: string, key: string) =>
      SECRET_PARAM.test(decodeQueryKey(key)) ? `${before}${key}=${URL_REDACTED}` : pair,
    );
  return rest.slice(0, start) + query;
}

/** A query key as a server reads it (`pass%77ord` is `password`), or as written when it does not decode. */
function decodeQueryKey(key: string): string {
  try {
    return decodeURIComponent(key.replaceAll('+', ' '));
  } catch {
    return key;
  }
}
