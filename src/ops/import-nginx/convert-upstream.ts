/**
 * nginx `upstream { }` → a sluice upstream. Targets are read first; their scheme is only known
 * once a `proxy_pass http://NAME` or `https://NAME` uses the upstream, so the URLs are written at
 * the end (`toSluiceUpstream`), together with the retry settings the locations asked for.
 *
 * nginx sets `max_fails` and `fail_timeout` per server and retries (`proxy_next_upstream`) per
 * location; sluice sets both per upstream. The first server's and the first location's settings
 * are taken, and every server or location that differs is a warning.
 */
import type { NginxDirective, SourcePlace } from './ast.js';
import type { SluiceUpstreamTls } from './convert-proxy-ssl.js';
import { NginxSyntaxError } from './nginx-syntax-error.js';
import type { SluiceRetry, SluiceUpstream } from './sluice-config.js';
import { parseNginxTime, toSluiceDuration } from './units.js';
import { toSluiceTemplate } from './variables.js';
import type { WarningList } from './warnings.js';

/** One `server` line of an upstream. */
export interface TargetPlan {
  /** `host:port` (`[v6]:port`); the scheme comes from the proxy_pass that uses the upstream. */
  readonly hostPort: string;
  weight: number;
  readonly backup: boolean;
  readonly down: boolean;
  readonly maxConns: number | undefined;
  readonly resolve: boolean;
  readonly maxFails: number;
  /** Milliseconds. */
  readonly failTimeoutMs: number;
  readonly failTimeoutText: string;
  readonly directive: NginxDirective;
}

/** A read upstream, its URLs still to be written. */
export interface UpstreamPlan {
  readonly name: string;
  readonly directive: NginxDirective;
  readonly balance: 'least_conn' | 'ip_hash' | 'hash' | 'random' | undefined;
  readonly hashKey: string | undefined;
  readonly keepalive: number | undefined;
  readonly keepaliveTimeout: string | undefined;
  readonly targets: readonly TargetPlan[];
  readonly notes: readonly string[];
}

const NGINX_MAX_FAILS = 1;
const NGINX_FAIL_TIMEOUT_MS = 10_000;
/** Beyond this sluice reuses idle connections longer than a Node target keeps them (5 s). */
const SAFE_KEEPALIVE_TIMEOUT_MS = 4000;

/** Reads an `upstream NAME { ... }` block. */
export function readUpstream(d: NginxDirective, warnings: WarningList): UpstreamPlan {
  const name = d.args[0];
  if (d.args.length !== 1 || name === undefined) {
    throw new NginxSyntaxError(d.file, d.line, d.col, 'invalid number of arguments in "upstream" directive');
  }
  let balance: UpstreamPlan['balance'];
  let hashKey: string | undefined;
  let keepalive: number | undefined;
  let keepaliveTimeout: string | undefined;
  const notes: string[] = [];
  const targets: TargetPlan[] = [];
  for (const x of d.block ?? []) {
    switch (x.name) {
      case 'server': {
        const t = readTarget(x, warnings);
        if (t !== null) targets.push(t);
        break;
      }
      case 'least_conn':
      case 'ip_hash':
        balance = x.name;
        break;
      case 'random':
        balance = 'random';
        if (x.args[0] !== 'two') {
          warnings.add(x, 'random: sluice always picks the better of two random targets (random two)');
        } else if (x.args[1] !== undefined && x.args[1] !== 'least_conn') {
          warnings.add(x, `random two ${x.args[1]}: sluice compares requests in flight (least_conn)`);
        }
        break;
      case 'hash': {
        const key = x.args[0];
        const t = key === undefined ? { error: 'hash needs a key' } : toSluiceTemplate(key);
        if ('error' in t) {
          warnings.add(x, `hash ${key ?? ''}: ${t.error}; round-robin is used instead`);
          break;
        }
        balance = 'hash';
        hashKey = t.text;
        if (x.args[1] !== 'consistent') {
          warnings.add(
            x,
            'hash without consistent: sluice only hashes consistently (ketama), so keys map differently',
          );
        }
        break;
      }
      case 'keepalive': {
        const n = Number(x.args[0]);
        if (Number.isInteger(n) && n >= 1) keepalive = n;
        else warnings.add(x, `keepalive ${x.args[0] ?? ''}: not a number of connections; not carried over`);
        break;
      }
      case 'keepalive_timeout': {
        const ms = parseNginxTime(x.args[0] ?? '');
        if (ms === null) {
          warnings.add(x, `keepalive_timeout ${x.args[0] ?? ''}: not a time; not carried over`);
          break;
        }
        keepaliveTimeout = toSluiceDuration(x.args[0]!, { at: x, warnings }) ?? undefined;
        if (ms > SAFE_KEEPALIVE_TIMEOUT_MS) {
          notes.push(
            `keepalive_timeout ${keepaliveTimeout} (from nginx) is above sluice's 4s default: a Node target closes idle connections after 5s`,
          );
        }
        break;
      }
      default:
        // Every other directive is reported by the catalogue walk (directives.ts).
        break;
    }
  }
  const kept = dropUnsupportedBackups(targets, balance, warnings);
  return {
    name,
    directive: d,
    balance,
    hashKey,
    keepalive,
    keepaliveTimeout,
    targets: mergeDuplicates(kept, warnings),
    notes,
  };
}

function readTarget(x: NginxDirective, warnings: WarningList): TargetPlan | null {
  const [address, ...params] = x.args;
  if (address === undefined) {
    warnings.add(x, 'server needs an address; not carried over');
    return null;
  }
  if (address.startsWith('unix:')) {
    warnings.add(x, `server ${address}: sluice connects to upstreams over TCP only; not carried over`);
    return null;
  }
  const hostPort = /:\d+$/.test(address) ? address : `${address}:80`;
  let valid = false;
  try {
    valid = new URL(`http://${hostPort}`).host !== '';
  } catch {
    valid = false;
  }
  if (!valid) {
    warnings.add(x, `server ${address}: not a host and port sluice can connect to; not carried over`);
    return null;
  }
  let weight = 1;
  let backup = false;
  let down = false;
  let maxConns: number | undefined;
  let resolve = false;
  let maxFails = NGINX_MAX_FAILS;
  let failTimeoutMs = NGINX_FAIL_TIMEOUT_MS;
  let failTimeoutText = '10s';
  for (const p of params) {
    const [key, value = ''] = p.split('=', 2) as [string, string | undefined];
    if (p === 'backup') backup = true;
    else if (p === 'down') down = true;
    else if (p === 'resolve') resolve = true;
    else if (key === 'weight' && /^\d+$/.test(value) && Number(value) >= 1) {
      weight = Number(value);
      if (weight > 1000) {
        warnings.add(x, `server ${address}: weight ${weight} is above sluice's maximum; 1000 is used`);
        weight = 1000;
      }
    } else if (key === 'max_fails' && /^\d+$/.test(value)) maxFails = Number(value);
    else if (key === 'fail_timeout' && parseNginxTime(value) !== null) {
      failTimeoutMs = parseNginxTime(value)!;
      failTimeoutText = toSluiceDuration(value, { at: x, warnings })!;
    } else if (key === 'max_conns' && /^\d+$/.test(value)) maxConns = Number(value);
    else warnings.add(x, `server ${address}: parameter ${p} is not carried over`);
  }
  const host = hostPort.slice(0, hostPort.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (resolve && (/^[\d.]+$/.test(host) || host.includes(':'))) {
    warnings.add(x, `server ${address}: resolve needs a host name; not carried over`);
    resolve = false;
  }
  return {
    hostPort,
    weight,
    backup,
    down,
    maxConns,
    resolve,
    maxFails,
    failTimeoutMs,
    failTimeoutText,
    directive: x,
  };
}

/** nginx never uses backup servers with hash, ip_hash or random; sluice refuses them there. */
function dropUnsupportedBackups(
  targets: TargetPlan[],
  balance: UpstreamPlan['balance'],
  warnings: WarningList,
): TargetPlan[] {
  if (balance !== 'hash' && balance !== 'ip_hash' && balance !== 'random') return targets;
  return targets.filter((t) => {
    if (!t.backup) return true;
    warnings.add(
      t.directive,
      `server ${t.hostPort} backup: backups are not used with ${balance} (in nginx either); not carried over`,
    );
    return false;
  });
}

/** The same server listed twice gets twice the share in nginx: one target with the summed weight. */
function mergeDuplicates(targets: TargetPlan[], warnings: WarningList): TargetPlan[] {
  const out: TargetPlan[] = [];
  for (const t of targets) {
    const first = out.find((o) => o.hostPort === t.hostPort);
    if (first === undefined) {
      out.push({ ...t });
      continue;
    }
    first.weight = Math.min(1000, first.weight + t.weight);
    warnings.add(
      t.directive,
      `server ${t.hostPort} is listed again: sluice lists a target once, so its weights are added (${first.weight})`,
    );
  }
  return out;
}

/** The first setting seen for each upstream, and where it was written. */
type FirstSeen<T> = Map<string, { readonly value: T; readonly at: SourcePlace }>;

/**
 * Keeps the first `value` given for upstream `name`; a later one that differs (compared as
 * `key(value)`) is a warning at its own place: sluice sets `setting` per upstream, nginx sets its
 * `directives` per location.
 */
function keepFirst<T>(
  seen: FirstSeen<T>,
  name: string,
  value: T,
  at: SourcePlace,
  key: (v: T) => string,
  words: { readonly directives: string; readonly setting: string },
  warnings: WarningList,
): void {
  const first = seen.get(name);
  if (first === undefined) seen.set(name, { value, at });
  else if (key(first.value) !== key(value)) {
    warnings.add(
      at,
      `${words.directives} settings differ from those of ${first.at.file}:${first.at.line} for upstream ${name}; sluice sets ${words.setting} per upstream, so the first ones are used`,
    );
  }
}

const RETRY_WORDS = { directives: 'proxy_next_upstream', setting: 'retries' } as const;
const TLS_WORDS = { directives: 'proxy_ssl_*', setting: 'TLS' } as const;
const tlsKey = (t: SluiceUpstreamTls | undefined): string => JSON.stringify(t ?? {});

/** How the locations use the upstreams: the scheme of their proxy_pass, their retry and TLS settings. */
export class UpstreamUsage {
  readonly #scheme = new Map<string, { scheme: string; at: SourcePlace }>();
  readonly #retry: FirstSeen<SluiceRetry | undefined> = new Map();
  readonly #tls: FirstSeen<SluiceUpstreamTls | undefined> = new Map();

  /**
   * Records one proxy_pass to `name`; `retryAt` is where its retry settings were written, `tls`
   * its proxy_ssl_* (https only).
   */
  use(
    name: string,
    scheme: string,
    at: SourcePlace,
    retry: SluiceRetry | undefined,
    retryAt: SourcePlace,
    warnings: WarningList,
    tls?: SluiceUpstreamTls,
  ): void {
    const seen = this.#scheme.get(name);
    if (seen === undefined) this.#scheme.set(name, { scheme, at });
    else if (seen.scheme !== scheme) {
      warnings.add(
        at,
        `proxy_pass ${scheme}://${name}: upstream ${name} is already used with ${seen.scheme}:// (${seen.at.file}:${seen.at.line}); sluice gives each target one scheme, so ${seen.scheme}:// is used`,
      );
    }
    keepFirst(this.#retry, name, retry, retryAt, retryKey, RETRY_WORDS, warnings);
    if (scheme === 'https') keepFirst(this.#tls, name, tls, at, tlsKey, TLS_WORDS, warnings);
  }

  /** The TLS settings of the first https location using `name`. */
  tlsOf(name: string): SluiceUpstreamTls | undefined {
    return this.#tls.get(name)?.value;
  }

  /** The scheme `name` is used with; `http` when no location uses it. */
  schemeOf(name: string): string {
    return this.#scheme.get(name)?.scheme ?? 'http';
  }

  /** The retry settings of the first location using `name`; `undefined` when they are nginx's defaults. */
  retryOf(name: string): SluiceRetry | undefined {
    const retry = this.#retry.get(name)?.value;
    return retry === undefined || retryKey(retry) === retryKey(undefined) ? undefined : retry;
  }

  /** Whether any location proxies to `name`. */
  isUsed(name: string): boolean {
    return this.#scheme.has(name);
  }
}

/** Retry settings with nginx's defaults filled in, comparable as text. */
function retryKey(retry: SluiceRetry | undefined): string {
  return JSON.stringify([
    retry?.on ?? ['error', 'timeout'],
    retry?.tries ?? 0,
    retry?.timeout ?? '0s',
    retry?.non_idempotent ?? false,
  ]);
}

/** Writes the sluice upstream; `null` when no target is left (routes to it answer 502). */
export function toSluiceUpstream(
  plan: UpstreamPlan,
  usage: UpstreamUsage,
  warnings: WarningList,
): SluiceUpstream | null {
  const first = plan.targets.find((t) => !t.down) ?? plan.targets[0];
  if (first === undefined) return null;
  for (const t of plan.targets) {
    // A down server is never tried, so its failure settings do not matter.
    if (t.down) continue;
    if (t.maxFails !== first.maxFails || t.failTimeoutMs !== first.failTimeoutMs) {
      warnings.add(
        t.directive,
        `server ${t.hostPort}: sluice sets max_fails and fail_timeout per upstream; the first server's (max_fails=${first.maxFails} fail_timeout=${first.failTimeoutText}) are used`,
      );
    }
  }
  const scheme = usage.schemeOf(plan.name);
  const out: SluiceUpstream = { targets: [] };
  if (plan.balance !== undefined) out.balance = plan.balance;
  if (plan.hashKey !== undefined) out.hash_key = plan.hashKey;
  if (plan.keepalive !== undefined) out.keepalive = plan.keepalive;
  if (plan.keepaliveTimeout !== undefined) out.keepalive_timeout = plan.keepaliveTimeout;
  if (first.maxFails !== NGINX_MAX_FAILS) out.max_fails = first.maxFails;
  if (first.failTimeoutMs !== NGINX_FAIL_TIMEOUT_MS) out.fail_timeout = first.failTimeoutText;
  out.targets = plan.targets.map((t) => {
    const target: SluiceUpstream['targets'][number] = { url: `${scheme}://${t.hostPort}` };
    if (t.weight !== 1) target.weight = t.weight;
    if (t.backup) target.backup = true;
    if (t.down) target.down = true;
    if (t.maxConns !== undefined) target.max_conns = t.maxConns;
    if (t.resolve) target.resolve = true;
    return target;
  });
  const retry = usage.retryOf(plan.name);
  if (retry !== undefined) out.retry = retry;
  const tls = scheme === 'https' ? usage.tlsOf(plan.name) : undefined;
  if (tls !== undefined) out.tls = tls;
  return out;
}
