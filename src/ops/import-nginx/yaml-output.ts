/**
 * The converted config as YAML a person reads and edits: keys in a fixed, meaningful order (a
 * server's name and addresses before its routes, a route's match before its action), short maps
 * such as `match:` and upstream targets on one line, and comments where the import has something
 * to say: where each server, route and upstream came from, and what differs from nginx.
 */
import { Document, isMap, isScalar, isSeq, type Node, Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import type { SluiceConfigInput } from '../../config/schema.js';
import type { YamlNote } from './sluice-config.js';

const TOP_ORDER = ['version', 'workers', 'user', 'group', 'shutdown_timeout', 'log', 'servers', 'upstreams'];
const SERVER_ORDER = [
  'name',
  'listen',
  'server_name',
  'default',
  'http2',
  'tls',
  'limits',
  'trusted_proxies',
  'access',
  'rate_limit',
  'routes',
];
const ROUTE_ORDER = ['name', 'match', 'access', 'rate_limit', 'proxy', 'respond', 'redirect'];
const PROXY_ORDER = [
  'upstream',
  'url',
  'strip_prefix',
  'preserve_host',
  'set_headers',
  'remove_headers',
  'response_headers',
  'timeouts',
];
const UPSTREAM_ORDER = [
  'balance',
  'hash_key',
  'keepalive',
  'keepalive_timeout',
  'max_fails',
  'fail_timeout',
  'targets',
  'retry',
];

/** Comment lines are wrapped at this width (the `# ` included). */
const COMMENT_WIDTH = 100;

/** Renders `config` with `header` as the file's first comment and each note before its node. */
export function renderYaml(config: SluiceConfigInput, notes: readonly YamlNote[], header: string): string {
  const doc = new Document(literalDollarBraces(ordered(config)));
  doc.commentBefore = comment(header);
  styleFlow(doc);
  const byPath = new Map<string, { path: readonly (string | number)[]; texts: string[] }>();
  for (const note of notes) {
    const key = JSON.stringify(note.path);
    const entry = byPath.get(key) ?? { path: note.path, texts: [] };
    entry.texts.push(note.text);
    byPath.set(key, entry);
  }
  for (const { path, texts } of byPath.values()) attach(doc, path, texts.join('\n'));
  return doc.toString({ lineWidth: 0 });
}

/** A copy of the config with its keys in reading order. */
function ordered(config: SluiceConfigInput): Record<string, unknown> {
  const out = order(config, TOP_ORDER);
  out.servers = config.servers.map((s) => {
    const server = order(s, SERVER_ORDER);
    server.routes = s.routes.map((r) => {
      const route = order(r, ROUTE_ORDER);
      if (r.proxy !== undefined) route.proxy = order(r.proxy, PROXY_ORDER);
      return route;
    });
    return server;
  });
  if (config.upstreams !== undefined) {
    out.upstreams = Object.fromEntries(
      Object.entries(config.upstreams).map(([name, u]) => [name, order(u, UPSTREAM_ORDER)]),
    );
  }
  return out;
}

/**
 * Every `${` of a value written `$${`: sluice reads `${NAME}` in any string as an environment
 * variable, and nginx text such as `return 200 "it's: ${host}"` means none.
 */
function literalDollarBraces<T>(value: T): T {
  if (typeof value === 'string') return value.replaceAll('${', () => '$${') as T;
  if (Array.isArray(value)) return value.map(literalDollarBraces) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literalDollarBraces(v)])) as T;
  }
  return value;
}

function order(value: object, keys: readonly string[]): Record<string, unknown> {
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  const rank = (k: string): number => {
    const i = keys.indexOf(k);
    return i === -1 ? keys.length : i;
  };
  return Object.fromEntries(entries.sort(([a], [b]) => rank(a) - rank(b)));
}

/** One-line style for the small collections, and quotes on listen addresses (`":80"`). */
function styleFlow(doc: Document): void {
  const servers = doc.get('servers', true);
  if (isSeq(servers)) {
    for (const server of servers.items) {
      if (!isMap(server)) continue;
      const listen = server.get('listen', true);
      if (isSeq(listen)) {
        listen.flow = true;
        for (const item of listen.items) if (isScalar(item)) item.type = Scalar.QUOTE_DOUBLE;
      }
      const names = server.get('server_name', true);
      flowIfShort(names);
      if (isSeq(names)) for (const item of names.items) if (isScalar(item)) quoteRegex(item);
      flowIfShort(server.get('trusted_proxies', true));
      flowItems(server.get('access', true));
      flow(server.get('rate_limit', true));
      const routes = server.get('routes', true);
      if (!isSeq(routes)) continue;
      for (const route of routes.items) {
        if (!isMap(route)) continue;
        const match = route.get('match', true);
        flow(match);
        if (isMap(match)) {
          const regex = match.get('path_regex', true);
          if (isScalar(regex)) quoteRegex(regex);
        }
        flowItems(route.get('access', true));
        flow(route.get('rate_limit', true));
        const proxy = route.get('proxy', true);
        if (isMap(proxy)) {
          flow(proxy.get('timeouts', true));
          flowIfShort(proxy.get('remove_headers', true));
          const response = proxy.get('response_headers', true);
          // nginx's hidden headers alone are about 100 characters: one line still reads best.
          if (isMap(response)) flowIfShort(response.get('remove', true), 120);
        }
      }
    }
  }
  const upstreams = doc.get('upstreams', true);
  if (isMap(upstreams)) {
    for (const pair of upstreams.items) {
      if (!isMap(pair.value)) continue;
      flowItems(pair.value.get('targets', true));
      const retry = pair.value.get('retry', true);
      if (isMap(retry)) flow(retry.get('on', true));
    }
  }
}

/** Regexes in single quotes, where a backslash is just a backslash (`'\.php$'`, not `"\\.php$"`). */
function quoteRegex(node: Scalar): void {
  if (typeof node.value === 'string' && node.value.includes('\\')) node.type = Scalar.QUOTE_SINGLE;
}

function flow(node: unknown): void {
  if (isMap(node) || isSeq(node)) node.flow = true;
}

function flowItems(node: unknown): void {
  if (isSeq(node)) for (const item of node.items) flow(item);
}

function flowIfShort(node: unknown, width = 80): void {
  if (isSeq(node) && JSON.stringify(node.toJSON()).length <= width) node.flow = true;
}

/** Puts `text` as a comment before the node at `path` (before its key when it is a map value). */
function attach(doc: Document, path: readonly (string | number)[], text: string): void {
  const last = path.at(-1);
  if (typeof last === 'string') {
    const parent = doc.getIn(path.slice(0, -1), true);
    if (!isMap(parent)) return;
    const pair = (parent as YAMLMap).items.find((p) => isScalar(p.key) && p.key.value === last);
    if (pair === undefined || !isScalar(pair.key)) return;
    pair.key.commentBefore = join(pair.key.commentBefore, comment(text));
    return;
  }
  const node = (path.length === 0 ? doc.contents : doc.getIn(path, true)) as Node | YAMLSeq | null;
  if (node === null || typeof node !== 'object' || !('commentBefore' in node || isMap(node) || isSeq(node)))
    return;
  node.commentBefore = join(node.commentBefore, comment(text));
}

function join(before: string | null | undefined, text: string): string {
  return before === null || before === undefined || before === '' ? text : `${before}\n${text}`;
}

/** `text` as the yaml library's comment text: each line wrapped, each starting with a space. */
function comment(text: string): string {
  return text
    .split('\n')
    .flatMap((line) => wrap(line, COMMENT_WIDTH - 2))
    .map((line) => (line === '' ? '' : ` ${line}`))
    .join('\n');
}

function wrap(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      out.push(current);
      current = `  ${word}`;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  if (current !== '') out.push(current);
  return out;
}
