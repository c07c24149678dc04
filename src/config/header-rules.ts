/** Checks for header names and values written in the config (set, remove, respond headers). */

import { HEADER_NAME_HINT, hasForbiddenValueChar, isHttpToken } from './http-token.js';
import { isMapping, type KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';
import { parseTemplate } from './template.js';

/**
 * A `{ Name: value }` mapping as [name, value] pairs in written order, names as written. Each name
 * must be a token and given once (case-insensitively); values must not hold CR, LF, NUL, other
 * controls but tab, nor characters above U+00FF, and
 * with `variables` their `$variables` must be known.
 */
export function headerPairs(
  map: Readonly<Record<string, string | undefined>> | undefined,
  path: KeyPath,
  problems: ProblemCollector,
  variables: boolean,
): [string, string][] {
  if (!isMapping(map)) return [];
  const pairs: [string, string][] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(map)) {
    if (value === undefined) continue;
    const at = [...path, name];
    const lower = name.toLowerCase();
    if (!isHttpToken(name)) {
      problems.error(at, 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(name)} is not a valid header name`, {
        at: 'key',
        hint: HEADER_NAME_HINT,
      });
      continue;
    }
    const first = seen.get(lower);
    if (first !== undefined) {
      problems.error(
        at,
        'SLUICE_E_CONFIG_DUPLICATE_NAME',
        `header ${JSON.stringify(name)} is also set as ${JSON.stringify(first)}`,
        {
          at: 'key',
          hint: 'header names are case-insensitive; keep one of them',
        },
      );
      continue;
    }
    seen.set(lower, name);
    if (hasForbiddenValueChar(value)) {
      problems.error(at, 'SLUICE_E_CONFIG_VALUE', 'a header value must not contain a line break or NUL', {
        hint: 'write the value on one line; YAML block scalars (| and >) add a line break at the end',
      });
      continue;
    }
    // What HTTP can carry (Node refuses the rest when sending): checked here, or every request of
    // the route failed at run time (a proxy route's failure even counted against its targets).
    const bad = /[^\t\x20-\x7e\x80-\xff]/.exec(value);
    if (bad !== null) {
      const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      problems.error(
        at,
        'SLUICE_E_CONFIG_VALUE',
        `a header value cannot hold U+${code} ${JSON.stringify(bad[0])}`,
        {
          hint: 'header values are bytes: use ASCII (or Latin-1) characters, and percent-encode others as the receiver expects',
        },
      );
      continue;
    }
    if (variables) {
      const parsed = parseTemplate(value);
      if ('error' in parsed) {
        problems.error(at, 'SLUICE_E_CONFIG_VARIABLE', parsed.error);
        continue;
      }
    }
    pairs.push([name, value]);
  }
  return pairs;
}

/** A list of header names, lower-cased and each a token. */
export function headerNames(
  list: readonly (string | undefined)[] | undefined,
  path: KeyPath,
  problems: ProblemCollector,
): string[] {
  const names: string[] = [];
  list?.forEach((name, i) => {
    if (name === undefined) return;
    if (!isHttpToken(name)) {
      problems.error(
        [...path, i],
        'SLUICE_E_CONFIG_VALUE',
        `${JSON.stringify(name)} is not a valid header name`,
        { hint: HEADER_NAME_HINT },
      );
      return;
    }
    const lower = name.toLowerCase();
    if (!names.includes(lower)) names.push(lower);
  });
  return names;
}

/**
 * Names sluice writes or removes itself when it forwards a message: the framing (Content-Length,
 * Transfer-Encoding), the connection's own headers (RFC 9110 7.6.1) and, upstream, Expect (sluice
 * answers 100-continue to the client itself).
 */
const MANAGED = {
  request: new Set([
    'connection',
    'keep-alive',
    'proxy-connection',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
    'content-length',
    'expect',
  ]),
  response: new Set([
    'connection',
    'keep-alive',
    'proxy-connection',
    'trailer',
    'transfer-encoding',
    'upgrade',
    'content-length',
  ]),
} as const;

/**
 * `pairs` without the headers sluice manages itself, each left out with a warning at its name.
 * Set anyway, they broke the exchange: nginx's WebSocket idiom (`Upgrade: $http_upgrade`,
 * `Connection: upgrade`) made undici refuse the upgrade, counted as a failure of every target
 * (502 for the whole upstream for fail_timeout), and a Transfer-Encoding set on a response with a
 * Content-Length framed it both ways.
 */
export function withoutManaged(
  pairs: readonly [string, string][],
  path: KeyPath,
  problems: ProblemCollector,
  side: keyof typeof MANAGED,
): [string, string][] {
  return pairs.filter(([name]) => {
    if (!MANAGED[side].has(name.toLowerCase())) return true;
    problems.warn([...path, name], 'SLUICE_E_CONFIG_VALUE', `${name} is left out: sluice sets it itself`, {
      at: 'key',
      hint:
        side === 'request'
          ? 'remove it: sluice frames the request, keeps its upstream connections alive and proxies WebSocket upgrades as they come (nginx needs proxy_set_header Upgrade/Connection for that, sluice does not)'
          : "remove it: sluice frames the response and manages the client's connection",
    });
    return false;
  });
}
