/**
 * Allow/deny rules on the client address (nginx `allow` / `deny`): checked in order, the first
 * rule whose block contains the address decides; no rule matching falls to the configured default.
 * Compiled once per config into one BlockList per rule (native, IPv4 and IPv6).
 */
import type { ResolvedAccess } from '../config/types.js';
import { IpSet } from '../core/ip-set.js';

/** A compiled rule list. */
export class AccessControl {
  readonly #rules: { readonly allow: boolean; readonly set: IpSet }[];
  readonly #otherwise: boolean;

  constructor(access: ResolvedAccess) {
    // Consecutive rules with the same verdict share one set: one native check instead of several.
    const rules: { allow: boolean; cidrs: string[] }[] = [];
    for (const r of access.rules) {
      const last = rules.at(-1);
      if (last !== undefined && last.allow === r.allow) last.cidrs.push(r.cidr);
      else rules.push({ allow: r.allow, cidrs: [r.cidr] });
    }
    this.#rules = rules.map((r) => ({ allow: r.allow, set: new IpSet(r.cidrs) }));
    this.#otherwise = access.otherwise;
  }

  /** Whether `address` may be served. */
  allows(address: string): boolean {
    for (const rule of this.#rules) if (rule.set.has(address)) return rule.allow;
    return this.#otherwise;
  }
}
