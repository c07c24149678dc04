/**
 * A server nginx binds to a loopback address only (`listen 127.0.0.1:8080`) answers local clients
 * only. When sluice must listen on the wildcard instead (another server listens on `:8080`, and
 * sluice cannot bind both), the server keeps that restriction as access rules: loopback clients
 * only, on top of whatever allow/deny it had. A client reaching a loopback address comes from one.
 *
 * nginx's first-match rules are intersected exactly: each `allow X` becomes `allow X ∩ loopback`
 * then `deny X`, each `deny` stays, and the default (allow) becomes `allow loopback; deny all`.
 */
import { BlockList, isIP } from 'node:net';
import { normaliseCidr } from '../../config/ip-cidr.js';
import type { SluiceAccess } from './sluice-config.js';

/** The loopback block of an address nginx binds (`127.0.0.1` → `127.0.0.0/8`), or `null`. */
export function loopbackBlock(host: string): string | null {
  if (isIP(host) === 4 && host.startsWith('127.')) return '127.0.0.0/8';
  if (host === '::1') return '::1/128';
  return null;
}

type Rule = { allow: string } | { deny: string };

/** `access` (a server's or a route's, or none) for clients in `blocks` only. */
export function onlyFrom(access: SluiceAccess | undefined, blocks: readonly string[]): SluiceAccess {
  const tail: Rule[] = [...blocks.map((b) => ({ allow: b })), { deny: 'all' }];
  // The object form is never written by the import; a list it is given is nginx's order.
  if (access === undefined || !Array.isArray(access)) return tail;
  const out: Rule[] = [];
  for (const rule of access as readonly Rule[]) {
    if ('deny' in rule) {
      out.push(rule);
      if (rule.deny === 'all') return out;
      continue;
    }
    for (const b of blocks) {
      const both = intersection(rule.allow, b);
      if (both !== null) out.push({ allow: both });
    }
    out.push({ deny: rule.allow });
    if (rule.allow === 'all') return out;
  }
  return [...out, ...tail];
}

/** The CIDR block both `rule` (as written: an address, a block or `all`) and `block` cover. */
function intersection(rule: string, block: string): string | null {
  if (rule === 'all') return block;
  const r = normaliseCidr(rule);
  if ('error' in r) return null;
  if (covers(block, r.cidr)) return rule;
  if (covers(r.cidr, block)) return block;
  return null;
}

/** Whether CIDR `outer` holds all of CIDR `inner`. */
function covers(outer: string, inner: string): boolean {
  const [oa, op] = outer.split('/') as [string, string];
  const [ia, ip] = inner.split('/') as [string, string];
  const family = isIP(oa);
  if (family !== isIP(ia) || Number(ip) < Number(op)) return false;
  const list = new BlockList();
  const type = family === 4 ? 'ipv4' : 'ipv6';
  list.addSubnet(oa, Number(op), type);
  return list.check(ia, type);
}
