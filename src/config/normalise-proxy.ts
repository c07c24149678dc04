/** `proxy:` of a route → `ProxyAction`: the upstream it names (or the implicit one of its url), headers, timeouts. */
import { routeConfigPath } from '../router/normalise-path.js';
import type { ProxyDraft } from './config-draft.js';
import { durationOr } from './config-units.js';
import { headerNames, headerPairs, withoutManaged } from './header-rules.js';
import type { KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';
import type { PathMatch, ProxyAction } from './types.js';
import type { UpstreamRegistry } from './upstream-registry.js';
import { parseUpstreamUrl } from './upstream-url.js';

/** Proxy timeouts when `timeouts:` leaves them out. */
export const DEFAULT_PROXY_TIMEOUTS = { connectMs: 5000, readMs: 60_000, sendMs: 60_000 } as const;

const TARGET_HINT =
  'write proxy.upstream: NAME for an upstream under upstreams:, or proxy.url: http://HOST:PORT for a single target';

/** Checks and resolves a route's `proxy:`; `undefined` when it cannot be resolved (problems reported). */
export function normaliseProxy(
  draft: ProxyDraft,
  path: KeyPath,
  match: PathMatch | null,
  upstreams: UpstreamRegistry,
  problems: ProblemCollector,
): ProxyAction | undefined {
  let upstream: string | undefined;
  let basePath = '';
  if (draft.upstream !== undefined && draft.url !== undefined) {
    problems.error(path, 'SLUICE_E_CONFIG_VALUE', 'proxy has both upstream and url; give one of them', {
      hint: TARGET_HINT,
    });
  } else if (draft.upstream !== undefined) {
    upstream = upstreams.reference(draft.upstream, [...path, 'upstream']);
  } else if (draft.url !== undefined) {
    const url = parseUpstreamUrl(draft.url);
    if ('error' in url) problems.error([...path, 'url'], 'SLUICE_E_CONFIG_URL', url.error);
    else {
      upstream = upstreams.implicit(url, [...path, 'url']);
      basePath = url.basePath;
    }
  } else if (!problems.isNearRejected([...path, 'upstream']) && !problems.isNearRejected([...path, 'url'])) {
    // Unless a malformed upstream or url was dropped: that is reported already, not missing.
    problems.error(path, 'SLUICE_E_CONFIG_VALUE', 'proxy needs a target: give upstream or url', {
      hint: TARGET_HINT,
    });
  }

  // In the form routes and request paths are matched in, as the route's own path (routeConfigPath).
  const stripPrefix =
    draft.strip_prefix === undefined ? '' : (routeConfigPath(draft.strip_prefix) ?? draft.strip_prefix);
  if (stripPrefix !== '' && !stripPrefix.startsWith('/')) {
    problems.error(
      [...path, 'strip_prefix'],
      'SLUICE_E_CONFIG_VALUE',
      `${JSON.stringify(stripPrefix)} must start with "/"`,
      { hint: 'strip_prefix is removed from the start of the path: write "/api", not "api"' },
    );
  } else if (stripPrefix !== '' && match !== null && match.kind !== 'regex') {
    const matched = match.kind === 'exact' ? match.path : match.prefix;
    if (!matched.startsWith(stripPrefix)) {
      problems.warn(
        [...path, 'strip_prefix'],
        'SLUICE_E_CONFIG_VALUE',
        `${JSON.stringify(stripPrefix)} is not a prefix of the route's path ${JSON.stringify(matched)}, so it never strips anything`,
        {
          hint: 'make strip_prefix the start of the matched path, e.g. path_prefix: /api/ with strip_prefix: /api',
        },
      );
    }
  }

  const preserveHost = draft.preserve_host ?? true;
  const setPath = [...path, 'set_headers'];
  const setHeaders = withoutManaged(
    headerPairs(draft.set_headers, setPath, problems, true),
    setPath,
    problems,
    'request',
  );
  if (!preserveHost && setHeaders.some(([name]) => name.toLowerCase() === 'host')) {
    problems.warn(
      [...path, 'preserve_host'],
      'SLUICE_E_CONFIG_VALUE',
      'preserve_host: false has no effect: set_headers sets Host',
      {
        hint: 'remove one of the two; set_headers wins',
      },
    );
  }
  const response = draft.response_headers;
  const timeouts = draft.timeouts;
  const action: ProxyAction = {
    kind: 'proxy',
    upstream: upstream ?? '',
    basePath,
    stripPrefix,
    preserveHost,
    setHeaders,
    removeHeaders: headerNames(draft.remove_headers, [...path, 'remove_headers'], problems),
    responseSetHeaders: responseHeaders(response?.set, [...path, 'response_headers', 'set'], problems),
    responseRemoveHeaders: headerNames(response?.remove, [...path, 'response_headers', 'remove'], problems),
    responseAddHeaders: responseHeaders(response?.add, [...path, 'response_headers', 'add'], problems),
    responseAddAlwaysHeaders: responseHeaders(
      response?.add_always,
      [...path, 'response_headers', 'add_always'],
      problems,
    ),
    connectTimeoutMs: durationOr(timeouts?.connect, DEFAULT_PROXY_TIMEOUTS.connectMs),
    readTimeoutMs: durationOr(timeouts?.read, DEFAULT_PROXY_TIMEOUTS.readMs),
    sendTimeoutMs: durationOr(timeouts?.send, DEFAULT_PROXY_TIMEOUTS.sendMs),
  };
  return upstream === undefined ? undefined : action;
}

/** `response_headers` pairs with `$variables`, without the ones sluice manages. */
function responseHeaders(
  map: Readonly<Record<string, string | undefined>> | undefined,
  path: KeyPath,
  problems: ProblemCollector,
): [string, string][] {
  return withoutManaged(headerPairs(map, path, problems, true), path, problems, 'response');
}
