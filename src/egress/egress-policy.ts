/**
 * The egress allow-list decision: may this client address reach this host and port?
 *
 *   policies in config order ─▶ source in policy.sources? ─no─▶ next policy
 *                                     └─yes─▶ host:port in policy.hosts? ─yes─▶ allowed (policy name)
 *                                                       └─no─▶ next policy
 *   none left ─▶ denied: `source` (no policy lists the address) or `host` (some do, none lists the host)
 *
 * Host entries are compiled once per config into two maps per policy: exact hosts and wildcard
 * suffixes (`*.example.com` → `example.com`), each to the ports it allows (null: any port). A
 * lookup costs one map probe for the exact host plus one per dot in a host name: `a.b.example.com`
 * probes `b.example.com`, `example.com` and `com` as wildcard suffixes. A wildcard matches any
 * subdomain, never the apex, and never an IP address. Hosts are compared in the canonical form
 * of egress-target.ts, so `API.Example.COM.` and `[0::1]` match `api.example.com` and `[::1]`.
 */
import { isIP } from 'node:net';
import type { ResolvedEgressPolicy } from '../config/types.js';
import { IpSet, unmapIpv4 } from '../core/ip-set.js';
import { canonicalHost } from './egress-target.js';

/** The ports a host entry allows; null allows any port. */
type Ports = ReadonlySet<number> | null;

/** One policy, compiled for lookups. */
export interface CompiledEgressPolicy {
  readonly name: string;
  readonly sources: IpSet;
  /** Canonical host → ports. */
  readonly exact: ReadonlyMap<string, Ports>;
  /** Suffix of a `*.suffix` entry → ports. */
  readonly wildcard: ReadonlyMap<string, Ports>;
}

/** Why a request was denied: no policy lists its source, or none of those that do lists its host. */
export type EgressDenyReason = 'source' | 'host';

/** The outcome of a policy check. */
export type EgressDecision =
  | { readonly allowed: true; readonly policy: string }
  | { readonly allowed: false; readonly reason: EgressDenyReason };

const DENIED_SOURCE: EgressDecision = Object.freeze({ allowed: false, reason: 'source' });
const DENIED_HOST: EgressDecision = Object.freeze({ allowed: false, reason: 'host' });

/** Compiles resolved policies (hosts lower-case, CIDRs normalised) for `decideEgress`. */
export function compileEgressPolicies(
  policies: readonly ResolvedEgressPolicy[],
): readonly CompiledEgressPolicy[] {
  return policies.map((p) => {
    const exact = new Map<string, Set<number> | null>();
    const wildcard = new Map<string, Set<number> | null>();
    for (const entry of p.hosts) {
      const parsed = parseHostEntry(entry);
      if (parsed === null) continue;
      addPort(parsed.wildcard ? wildcard : exact, parsed.host, parsed.port);
    }
    return { name: p.name, sources: new IpSet(p.sources), exact, wildcard };
  });
}

/**
 * Decides whether `source` (a client address, IPv4-mapped or not) may reach `host` (canonical,
 * as `parseAbsoluteTarget`/`parseConnectTarget` return it) on `port`. The first policy in config
 * order that allows it names the decision.
 */
export function decideEgress(
  policies: readonly CompiledEgressPolicy[],
  source: string,
  host: string,
  port: number,
): EgressDecision {
  const address = unmapIpv4(source);
  let sourceKnown = false;
  for (const policy of policies) {
    if (!policy.sources.has(address)) continue;
    sourceKnown = true;
    if (hostAllowed(policy, host, port)) return { allowed: true, policy: policy.name };
  }
  return sourceKnown ? DENIED_HOST : DENIED_SOURCE;
}

function hostAllowed(policy: CompiledEgressPolicy, host: string, port: number): boolean {
  const ports = policy.exact.get(host);
  if (ports !== undefined && (ports === null || ports.has(port))) return true;
  if (policy.wildcard.size === 0 || host.startsWith('[') || isIP(host) !== 0) return false;
  for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
    const p = policy.wildcard.get(host.slice(dot + 1));
    if (p !== undefined && (p === null || p.has(port))) return true;
  }
  return false;
}

/** A policy host entry: `name`, `name:port`, `*.suffix[:port]`, `1.2.3.4[:port]` or `[v6][:port]`. */
function parseHostEntry(entry: string): { host: string; port: number | null; wildcard: boolean } | null {
  const m = /^(\*\.)?(\[[^\]]*\]|[^:]+)(?::(\d+))?$/.exec(entry);
  if (m === null) return null;
  const host = canonicalHost(m[2]!);
  if (host === null) return null;
  return { host, port: m[3] === undefined ? null : Number(m[3]), wildcard: m[1] !== undefined };
}

function addPort(map: Map<string, Set<number> | null>, host: string, port: number | null): void {
  const current = map.get(host);
  if (current === null) return;
  if (port === null) map.set(host, null);
  else if (current === undefined) map.set(host, new Set([port]));
  else current.add(port);
}
