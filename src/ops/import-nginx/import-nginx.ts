/**
 * `sluice import nginx`: an nginx config → an equivalent sluice.yaml and the warnings for what
 * could not be carried over. Pure apart from reading the included files, which goes through
 * `NginxFiles` (the disk by default).
 *
 *   text ─▶ parse (+ includes) ─▶ http: limit_req_zone, map, upstream ─▶ servers ─▶ locations
 *        ─▶ reconcile servers ─▶ upstreams (schemes and retries the locations asked for)
 *        ─▶ catalogue walk (every dropped directive is a warning) ─▶ YAML with comments
 *
 * Throws `NginxSyntaxError` where nginx would refuse the file, `RefusedLocationError` when a
 * location that refuses requests cannot be matched (dropped, sluice would serve them), and
 * `NothingToImportError` when no server is left.
 */
import { basename, dirname, isAbsolute, relative } from 'node:path';
import type { SluiceConfigInput } from '../../config/schema.js';
import type { NginxDirective } from './ast.js';
import type { ConvertContext, ZonePlan } from './convert-context.js';
import { readZone } from './convert-guards.js';
import { convertServer, type ServerPart } from './convert-server.js';
import { readUpstream, toSluiceUpstream, type UpstreamPlan, UpstreamUsage } from './convert-upstream.js';
import { type NginxContext, reportDropped } from './directives.js';
import { loadNginxTree, type NginxFiles } from './load-nginx-tree.js';
import { NothingToImportError } from './nothing-to-import-error.js';
import { reconcileServers } from './reconcile-servers.js';
import { RefusedLocationError } from './refused-location-error.js';
import type { Scope } from './scope.js';
import type { SluiceUpstream, YamlNote } from './sluice-config.js';
import { toSluiceDuration } from './units.js';
import { type ImportWarning, WarningList } from './warnings.js';
import { renderYaml } from './yaml-output.js';

/** What to import. */
export interface ImportNginxOptions {
  /** The nginx config's path, as the user gave it: warnings name it (and its includes) this way. */
  readonly file: string;
  /** Its text. */
  readonly text: string;
  /** nginx's prefix, against which relative includes and certificate paths are resolved; default: `file`'s directory. */
  readonly prefix?: string | undefined;
  /**
   * Certificate paths under this directory are written relative to it (for files kept beside
   * the YAML, as the golden tests are); `undefined`, the CLI's choice: always absolute.
   */
  readonly outputDir?: string | undefined;
  /** How included files are read; default: from disk. */
  readonly files?: NginxFiles | undefined;
}

/** The converted config, as YAML text and as an object, with every warning in file order. */
export interface ImportNginxResult {
  readonly yaml: string;
  readonly config: SluiceConfigInput;
  readonly warnings: readonly ImportWarning[];
}

/**
 * nginx rewrites a `Location` or `Refresh` header that starts with the proxy_pass URL to the
 * location's path unless told `proxy_redirect off`; sluice has no such rewrite, so an upstream's
 * redirect to its own address reaches the client. Said once per file, at its first proxy_pass.
 */
export const DEFAULT_REDIRECT =
  "proxy_pass: nginx's default proxy_redirect is not carried over: nginx rewrites a Location or Refresh header that starts with the proxy_pass URL to the location's path (http://10.0.0.5:8080/v1/login to /api/login); sluice passes it on unchanged, so the client sees the upstream's own address: have the upstream redirect to public or relative URLs (said once per file, at its first proxy_pass)";

/** Converts an nginx config to a sluice config. */
export function importNginx(options: ImportNginxOptions): ImportNginxResult {
  const fileOrder: string[] = [];
  const warnings = new WarningList(fileOrder);
  const prefix = options.prefix ?? dirname(options.file);
  const tree = loadNginxTree(
    { file: options.file, text: options.text, prefix, files: options.files },
    warnings,
    fileOrder,
  );

  const { main, http, httpContext } = splitContexts(tree.directives, warnings);
  reportDropped(main, 'main', warnings);
  if (httpContext === 'http-fragment') reportDropped(http, 'http', warnings);

  const mainScope: Scope = { kind: 'main', directives: main, parent: null };
  const httpScope: Scope = { kind: 'http', directives: http, parent: mainScope };
  const ctx: ConvertContext = {
    warnings,
    upstreams: readUpstreams(http, warnings),
    usage: new UpstreamUsage(),
    zones: readZones(http, warnings),
    upgradeVariables: readUpgradeMaps(http, warnings),
    defaultRedirects: new Map(),
    refused: [],
    where: (at) => {
      const rel = relative(prefix, at.file);
      return `${rel === '' || rel.startsWith('..') || isAbsolute(rel) ? at.file : rel}:${at.line}`;
    },
  };

  const parts: ServerPart[] = [];
  for (const d of http) {
    if (d.name !== 'server' || d.block === null) continue;
    parts.push(...convertServer(d, httpScope, ctx, { prefix, outputDir: options.outputDir }));
  }
  if (ctx.refused.length > 0) throw new RefusedLocationError(ctx.refused);
  for (const pass of ctx.defaultRedirects.values()) warnings.add(pass, DEFAULT_REDIRECT);
  const servers = reconcileServers(parts, warnings);
  if (servers.length === 0) {
    throw new NothingToImportError(
      options.file,
      'no server block sluice can serve: import the file that holds (or includes) the server { } blocks',
    );
  }

  const notes: YamlNote[] = [];
  const config: SluiceConfigInput = { version: 1, servers: [] };
  readMain(main, config, warnings);
  readAccessLogs(http, config, warnings);
  config.servers = servers.map((p, i) => {
    const origin = `nginx: server ${p.names[0]?.name ?? ''}`.trimEnd();
    notes.push({ path: ['servers', i], text: `${origin} (${ctx.where(p.directive)})` });
    for (const n of p.notes) notes.push({ path: ['servers', i, ...n.path], text: n.text });
    return p.server;
  });

  const upstreams: Record<string, SluiceUpstream> = {};
  for (const plan of ctx.upstreams.values()) {
    const u = toSluiceUpstream(plan, ctx.usage, warnings);
    if (u === null) {
      warnings.add(plan.directive, `upstream ${plan.name}: no server of it can be carried over; left out`);
      continue;
    }
    upstreams[plan.name] = u;
    const text = [
      `nginx: upstream ${plan.name} (${ctx.where(plan.directive)})`,
      ...plan.notes,
      ...(ctx.usage.isUsed(plan.name) ? [] : ['no proxy_pass uses this upstream']),
    ];
    notes.push({ path: ['upstreams', plan.name], text: text.join('\n') });
  }
  if (Object.keys(upstreams).length > 0) config.upstreams = upstreams;

  const list = warnings.list();
  const header = [
    `Imported from ${basename(options.file)} by \`sluice import nginx\`.`,
    list.length === 0
      ? 'Every directive was carried over.'
      : `${list.length} warning${list.length === 1 ? '' : 's'}: what could not be carried over is listed on stderr as FILE:LINE: warning: ...`,
    'Check it with `sluice check -c FILE`; docs/import-nginx.md lists what maps to what.',
  ].join('\n');
  return { yaml: renderYaml(config, notes, header), config, warnings: list };
}

/**
 * The main-context directives and the http-context ones. A file without `http { }` whose top
 * level has `server` or `upstream` blocks is a fragment of http (a conf.d or sites-enabled file
 * imported on its own) and is read as one.
 */
function splitContexts(
  top: readonly NginxDirective[],
  warnings: WarningList,
): { main: NginxDirective[]; http: NginxDirective[]; httpContext: 'http-block' | 'http-fragment' } {
  const blocks = top.filter((d) => d.name === 'http' && d.block !== null);
  if (
    blocks.length === 0 &&
    top.some((d) => (d.name === 'server' || d.name === 'upstream') && d.block !== null)
  ) {
    return { main: [], http: [...top], httpContext: 'http-fragment' };
  }
  for (const extra of blocks.slice(1)) {
    warnings.add(
      extra,
      'a second http block: nginx refuses this; its directives are read as part of the first',
    );
  }
  return {
    main: [...top],
    http: blocks.flatMap((d) => d.block ?? []),
    httpContext: 'http-block',
  };
}

function readUpstreams(http: readonly NginxDirective[], warnings: WarningList): Map<string, UpstreamPlan> {
  const out = new Map<string, UpstreamPlan>();
  for (const d of http) {
    if (d.name !== 'upstream' || d.block === null) continue;
    const plan = readUpstream(d, warnings);
    // `upstream Backend` and `proxy_pass http://backend` are one upstream to nginx.
    const key = plan.name.toLowerCase();
    const twin = out.get(key);
    if (twin !== undefined) {
      warnings.add(
        d,
        `duplicate upstream ${plan.name} (first at ${twin.directive.file}:${twin.directive.line}); nginx refuses this too, so it is left out`,
      );
      continue;
    }
    out.set(key, plan);
  }
  return out;
}

function readZones(http: readonly NginxDirective[], warnings: WarningList): Map<string, ZonePlan> {
  const out = new Map<string, ZonePlan>();
  for (const d of http) {
    if (d.name !== 'limit_req_zone') continue;
    const zone = readZone(d, warnings);
    if (zone !== undefined) out.set(zone[0], zone[1]);
  }
  return out;
}

/**
 * `map $http_upgrade $connection_upgrade { default upgrade; '' close; }`: the WebSocket idiom,
 * which sluice needs no equivalent of. Every other map is dropped with a warning.
 */
function readUpgradeMaps(http: readonly NginxDirective[], warnings: WarningList): Set<string> {
  const out = new Set<string>();
  for (const d of http) {
    if (d.name !== 'map' || d.block === null) continue;
    const [source, target] = d.args;
    if (source === '$http_upgrade' && target?.startsWith('$')) out.add(target.slice(1));
    else {
      warnings.add(
        d,
        `map ${d.args.join(' ')}: map variables have no sluice equivalent; not carried over (a value using ${target ?? 'it'} is dropped where it is used)`,
      );
    }
  }
  return out;
}

/** worker_processes, user, worker_shutdown_timeout → workers, user/group, shutdown_timeout. */
function readMain(main: readonly NginxDirective[], config: SluiceConfigInput, warnings: WarningList): void {
  for (const d of main) {
    const value = d.args[0] ?? '';
    switch (d.name) {
      case 'worker_processes':
        if (value === 'auto') break;
        if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 1024)
          config.workers = Number(value);
        else warnings.add(d, `worker_processes ${value}: not a number of processes; not carried over`);
        break;
      case 'user':
        config.user = value;
        if (d.args[1] !== undefined) config.group = d.args[1];
        break;
      case 'worker_shutdown_timeout': {
        const t = toSluiceDuration(value, { at: d, warnings });
        if (t === null) warnings.add(d, `worker_shutdown_timeout ${value}: not a time; not carried over`);
        else config.shutdown_timeout = t;
        break;
      }
      default:
        break;
    }
  }
}

/**
 * `access_log off` at http level (and nowhere turned on again) → `log.access: off`. Every other
 * access_log is dropped: sluice has one access log, JSON lines, for all servers.
 */
function readAccessLogs(
  http: readonly NginxDirective[],
  config: SluiceConfigInput,
  warnings: WarningList,
): void {
  const found: { d: NginxDirective; context: NginxContext }[] = [];
  const walk = (list: readonly NginxDirective[], context: NginxContext): void => {
    for (const d of list) {
      if (d.name === 'access_log' && d.block === null) found.push({ d, context });
      else if (d.block !== null && d.name === 'server' && context === 'http') walk(d.block, 'server');
      else if (d.block !== null && d.name === 'location') walk(d.block, 'location');
    }
  };
  walk(http, 'http');
  const httpOff = found.some((f) => f.context === 'http' && f.d.args[0] === 'off');
  const elsewhereOn = found.some((f) => f.context !== 'http' && f.d.args[0] !== 'off');
  for (const { d, context } of found) {
    if (context === 'http' && d.args[0] === 'off' && !elsewhereOn) continue;
    warnings.add(
      d,
      d.args[0] === 'off'
        ? `access_log off: sluice has one access log for every server and route (log.access: off turns it off for all); not carried over`
        : `access_log ${d.args.join(' ')}: sluice writes one access log of JSON lines for every server (log.access, default stdout); not carried over`,
    );
  }
  if (httpOff && !elsewhereOn) config.log = { access: 'off' };
}
