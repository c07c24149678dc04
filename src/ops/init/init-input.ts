/**
 * What every `sluice init` generator reads, and the facts they derive from a config: ports,
 * worker count, open files, stop grace, the addresses a health check can reach. Pure: the CLI
 * gathers the input (config, its text, the CPU count), the generators only compute.
 */
import { basename, dirname, extname, posix, relative, sep } from 'node:path';
import { defaultServers } from '../../config/default-servers.js';
import type { ResolvedConfig } from '../../config/types.js';
import { nofileNeeded, RECOMMENDED_NOFILE } from '../host-tuning.js';

/** One generated file: a path relative to `--out` (host files mirror their place under `/`) and its text. */
export interface InitFile {
  readonly path: string;
  readonly content: string;
}

/** Everything a generator needs; nothing else is read. */
export interface InitInput {
  readonly config: ResolvedConfig;
  /** The config file's text, carried as it is by the Kubernetes ConfigMap. */
  readonly configText: string;
  /** Absolute path of the config on the host that runs sluice (systemd's `ExecStart ... -c`). */
  readonly configPath: string;
  /** The CPU count `workers: auto` stands for on the host (LimitNOFILE, limits.conf). */
  readonly cpus: number;
  /** The `sluice` executable systemd starts. */
  readonly sluiceBin: string;
  /**
   * The kernel settings this host has now (`/proc/sys`, by sysctl key; null when unreadable), so
   * that `init sysctl` writes none lower than it is. Absent: nothing known of the host.
   */
  readonly hostSysctl?: Readonly<Record<string, string | null>>;
}

/** Where the config goes on a host without `-c`, and inside the image and the pod. */
export const DEFAULT_CONFIG_DIR = '/etc/sluice';

/** `npm install -g` with the default prefix (`/usr/local`) links the command here. */
export const DEFAULT_SLUICE_BIN = '/usr/local/bin/sluice';

/** The user systemd and limits.conf name when the config has no `user:`. */
export const DEFAULT_USER = 'sluice';

/**
 * Seconds a stop may take beyond `shutdown_timeout`: the primary SIGKILLs a worker still draining
 * 5 s after the deadline, then closes the admin listener, upstream pools and logs; 10 s covers both.
 */
export const STOP_MARGIN_S = 10;

/** The user the service runs as: the config's `user:`, else `sluice`. */
export function serviceUser(config: ResolvedConfig): string {
  return config.user ?? DEFAULT_USER;
}

/** Worker processes on the host: the config's number, or the CPU count for `auto`. */
export function workerCount(config: ResolvedConfig, cpus: number): number {
  return config.workers === 'auto' ? Math.max(1, cpus) : config.workers;
}

/** Distinct listen addresses, in config order. */
export function listenKeys(config: ResolvedConfig): string[] {
  return [...new Set(config.servers.flatMap((s) => s.listen.map((l) => l.key)))];
}

/** Client connections one worker may hold: `max_connections` of every listener, added up. */
export function connectionsPerWorker(config: ResolvedConfig): number {
  let n = 0;
  for (const server of defaultServers(config).values()) n += server.limits.maxConnections;
  return n;
}

/** The open-files limit to set, and how it was reached (for the comment beside it). */
export function nofileLimit(config: ResolvedConfig, cpus: number): { value: number; why: string } {
  const workers = workerCount(config, cpus);
  const perWorker = connectionsPerWorker(config);
  const needed = nofileNeeded(workers, perWorker);
  const counted =
    config.workers === 'auto'
      ? `${workers} workers (workers: auto, counted as the ${cpus} CPUs of the machine that generated this)`
      : `${workers} worker${workers === 1 ? '' : 's'}`;
  const sum = `${counted} x ${perWorker} max_connections x 2 (client + upstream) + 1024 = ${needed}`;
  if (needed <= RECOMMENDED_NOFILE)
    return { value: RECOMMENDED_NOFILE, why: `${sum}; ${RECOMMENDED_NOFILE} is the floor` };
  if (needed <= NR_OPEN_DEFAULT) return { value: needed, why: sum };
  return {
    value: needed,
    why: `${sum}; above the kernel's default fs.nr_open (${NR_OPEN_DEFAULT}), the most a limit may be: raise it first`,
  };
}

/** The kernel's default `fs.nr_open`: no open-files limit may exceed it. */
const NR_OPEN_DEFAULT = 1_048_576;

/** Whole seconds of `shutdown_timeout`, rounded up. */
export function shutdownSeconds(config: ResolvedConfig): number {
  return Math.ceil(config.shutdownTimeoutMs / 1000);
}

/** Seconds a supervisor should wait after SIGTERM before it kills: `shutdown_timeout` + the margin. */
export function stopGraceSeconds(config: ResolvedConfig): number {
  return shutdownSeconds(config) + STOP_MARGIN_S;
}

/** Distinct listen ports of the servers, in config order. */
export function listenPorts(config: ResolvedConfig): number[] {
  return [...new Set(config.servers.flatMap((s) => s.listen.map((l) => l.port)))];
}

/** A port the container offers: named (Kubernetes port names: 15 characters at most) and described. */
export interface OfferedPort {
  readonly port: number;
  readonly name: string;
  readonly what: string;
}

/**
 * The ports to expose: every server port (`http`, then `http-PORT`), and the admin API and the
 * egress proxy when they listen beyond loopback (on loopback nothing outside can reach them).
 */
export function offeredPorts(config: ResolvedConfig): OfferedPort[] {
  const out: OfferedPort[] = listenPorts(config).map((port, i) => ({
    port,
    name: i === 0 ? 'http' : `http-${port}`,
    what: 'server',
  }));
  const extra = [
    { listen: config.admin?.listen, name: 'admin', what: 'admin API' },
    { listen: config.egress?.listen, name: 'egress', what: 'egress proxy' },
  ];
  for (const e of extra) {
    if (e.listen === undefined || isLoopback(e.listen.host) || out.some((o) => o.port === e.listen!.port))
      continue;
    out.push({ port: e.listen.port, name: e.name, what: e.what });
  }
  return out;
}

/** Listen addresses bound to a loopback address: unreachable from outside a container or pod. */
export function loopbackListeners(config: ResolvedConfig): string[] {
  return listenKeys(config).filter((key) => {
    const host = config.servers.flatMap((s) => s.listen).find((l) => l.key === key)?.host ?? '';
    return isLoopback(host);
  });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The host to connect to for a bound address: a wildcard is reached over loopback. */
function connectHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * What a health check inside the container asks: the admin API's `/api/status` (it answers from
 * the primary, so a hung primary fails it), else the first plain-HTTP server port (any answer
 * proves a worker is serving; the route's own status, e.g. a 502 from a down upstream, is not
 * sluice's health). `null` when there is neither (only TLS listeners): a TCP check is the option.
 */
export function healthUrl(config: ResolvedConfig): { url: string; via: 'admin' | 'server' } | null {
  if (config.admin !== null) {
    const { host, port } = config.admin.listen;
    return { url: `http://${connectHost(host)}:${port}/api/status`, via: 'admin' };
  }
  const plain = config.servers.find((s) => s.tls === null);
  const address = plain?.listen[0];
  if (address === undefined) return null;
  return { url: `http://${connectHost(address.host)}:${address.port}/`, via: 'server' };
}

/**
 * A `node -e` program that GETs `url` and exits 0 on an answer (below 500 for the admin API: a 401
 * means tokens are configured and the API answered), 1 on an error or after 2 s. Slim images have
 * no curl or wget; node is there.
 */
export function healthCheckScript(check: { url: string; via: 'admin' | 'server' }): string {
  const ok = check.via === 'admin' ? 'r.statusCode<500?0:1' : '0';
  return `require('http').get('${check.url}',r=>process.exit(${ok})).on('error',()=>process.exit(1)).setTimeout(2000,()=>process.exit(1))`;
}

/** The config's file name where it is deployed: `sluice.yaml` (YAML, JSON), or `sluice.config.ts` for a module. */
export function deployedConfigName(configPath: string): string {
  const ext = extname(configPath).toLowerCase();
  return ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'].includes(ext) ? `sluice.config${ext}` : 'sluice.yaml';
}

/** The config's own file name (what `COPY` takes from the build context). */
export function configFileName(configPath: string): string {
  return basename(configPath);
}

/** Files sluice writes (pid file, access log), as absolute host paths. */
export function writtenFiles(config: ResolvedConfig): string[] {
  const files: string[] = [];
  if (config.pidFile !== null) files.push(config.pidFile);
  if (config.log.access !== 'stdout' && config.log.access !== 'off') files.push(config.log.access);
  return files;
}

/**
 * Where a path the config names lies in the image and the pod, where the config is
 * `/etc/sluice/NAME`. A path written relative to the config moves with it: it is resolved from
 * `/etc/sluice`, as sluice there resolves it, so `../run/sluice.pid` is `/etc/run/sluice.pid`. An
 * absolute path is the same path there.
 */
export function containerPath(path: string, input: InitInput): string {
  if (!input.config.relativePaths.includes(path)) return path;
  const rel = relative(dirname(input.config.file ?? input.configPath), path);
  return posix.resolve(DEFAULT_CONFIG_DIR, rel.split(sep).join(posix.sep));
}

/**
 * Whether a directory holds `/etc/sluice` (`/etc`, `/`): given to sluice's user or replaced by a
 * volume, it would take the config and the system's files with it, so it is never made writable.
 */
export function holdsConfigDir(dir: string): boolean {
  return dir === '/' || DEFAULT_CONFIG_DIR.startsWith(`${dir}/`);
}

/** Distinct directories of `files`, in order. */
export function directoriesOf(files: readonly string[]): string[] {
  return [...new Set(files.map((f) => dirname(f)))];
}

/**
 * Files the config reads besides itself: handler modules, TLS material and admin token files
 * (absolute). ProtectHome
 * must leave /home readable when any of them (or the config) lives there.
 */
export function readFiles(config: ResolvedConfig): string[] {
  const files: string[] = [];
  for (const s of config.servers) {
    if (s.tls !== null)
      files.push(s.tls.cert, s.tls.key, ...(s.tls.clientCa === null ? [] : [s.tls.clientCa]));
    for (const r of s.routes) if (r.action.kind === 'handler') files.push(r.action.module);
  }
  for (const u of Object.values(config.upstreams)) {
    for (const f of [u.tls?.ca, u.tls?.cert, u.tls?.key]) if (typeof f === 'string') files.push(f);
  }
  for (const t of config.admin?.tokens ?? []) if (t.file !== null) files.push(t.file);
  return files;
}
