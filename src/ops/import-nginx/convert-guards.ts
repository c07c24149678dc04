/**
 * `allow`/`deny` → `access:` (the ordered list form, nginx's first-match semantics exactly) and
 * `limit_req` with its `limit_req_zone` → `rate_limit:` naming the zone, so the servers and routes
 * of one zone share its buckets as in nginx (a server split in two included). Both sit on a server or a route, and a
 * route's replaces its server's, as a location's replaces its server's in nginx.
 */
import { normaliseCidr } from '../../config/ip-cidr.js';
import type { NginxDirective } from './ast.js';
import type { ConvertContext, ZonePlan } from './convert-context.js';
import { nearest, nearestList, type Scope } from './scope.js';
import type { SluiceAccess, SluiceRateLimit } from './sluice-config.js';
import { toSluiceTemplate } from './variables.js';
import type { WarningList } from './warnings.js';

/** A guard and the level it comes from (`location` ones go on the route). */
export interface GuardPlan<T> {
  readonly value: T;
  readonly level: Scope['kind'];
}

/** The effective allow/deny rules at `scope`. */
export function accessAt(scope: Scope, warnings: WarningList): GuardPlan<SluiceAccess> | undefined {
  const found = nearestList(scope, 'allow', 'deny');
  if (found === undefined) return undefined;
  const list: ({ allow: string } | { deny: string })[] = [];
  for (const d of found.directives) {
    const address = d.args[0];
    if (address === undefined || d.args.length !== 1) {
      warnings.add(d, `${d.name} takes one address; not carried over`);
      continue;
    }
    if (address !== 'all' && 'error' in normaliseCidr(address)) {
      warnings.add(
        d,
        `${d.name} ${address}: not an address or CIDR block sluice can check; not carried over`,
      );
      continue;
    }
    list.push(d.name === 'allow' ? { allow: address } : { deny: address });
  }
  return list.length === 0 ? undefined : { value: list, level: found.scope.kind };
}

/** Whether the rules refuse every client (`deny all` first): such a route needs no content. */
export function deniesEveryone(access: SluiceAccess | undefined): boolean {
  if (!Array.isArray(access)) return false;
  const first = access[0];
  return first !== undefined && 'deny' in first && first.deny === 'all';
}

/** Reads `limit_req_zone KEY zone=NAME:SIZE rate=Nr/s`. */
export function readZone(d: NginxDirective, warnings: WarningList): [string, ZonePlan] | undefined {
  const [key, ...params] = d.args;
  const zone = params
    .find((p) => p.startsWith('zone='))
    ?.slice('zone='.length)
    .split(':')[0];
  const rate = /^rate=(\d+)r\/(s|m)$/.exec(params.find((p) => p.startsWith('rate=')) ?? '');
  if (key === undefined || zone === undefined || zone === '' || rate === null) {
    warnings.add(d, 'limit_req_zone needs a key, zone=NAME:SIZE and rate=Nr/s or Nr/m; not carried over');
    return undefined;
  }
  return [zone, { key, rate: `${rate[1]}/${rate[2]}`, directive: d }];
}

/** The effective `limit_req` at `scope`. */
export function rateLimitAt(scope: Scope, ctx: ConvertContext): GuardPlan<SluiceRateLimit> | undefined {
  const found = nearestList(scope, 'limit_req');
  if (found === undefined) return undefined;
  const [d, ...more] = found.directives;
  for (const x of more) {
    ctx.warnings.add(
      x,
      'limit_req: sluice applies one rate limit per server or route; only the first is carried over',
    );
  }
  if (d === undefined) return undefined;
  const params = new Map(
    d.args.map((a) => [a.split('=')[0]!, a.includes('=') ? a.slice(a.indexOf('=') + 1) : '']),
  );
  const zoneName = params.get('zone');
  const zone = zoneName === undefined ? undefined : ctx.zones.get(zoneName);
  if (zone === undefined) {
    ctx.warnings.add(
      d,
      `limit_req: no limit_req_zone ${zoneName ?? ''} to take the rate from; not carried over`,
    );
    return undefined;
  }
  const key = toSluiceTemplate(zone.key);
  if ('error' in key) {
    ctx.warnings.add(
      zone.directive,
      `limit_req_zone ${zone.key}: ${key.error}; the limit is not carried over`,
    );
    return undefined;
  }
  const value: SluiceRateLimit = { rate: zone.rate };
  const burst = Number(params.get('burst') ?? '0');
  if (Number.isInteger(burst) && burst > 0) value.burst = burst;
  if (key.text !== '$remote_addr') value.key = key.text;
  // nginx's zone is one set of buckets for every server and location naming it, and so is sluice's.
  value.zone = zoneName;
  // A key made only of request parts can be empty: nginx counts no such request, sluice counts them
  // all in one bucket (a client cannot leave its limit by leaving out the header).
  if (/^(?:\$(?:http|cookie|arg)_[a-z0-9_]+)+$/i.test(zone.key.replaceAll(/[{}]/g, ''))) {
    ctx.warnings.add(
      zone.directive,
      `limit_req_zone ${zone.key}: nginx does not limit requests whose key is empty (without the header, cookie or argument); sluice limits them together, as one bucket`,
    );
  }
  if (burst > 0 && !params.has('nodelay')) {
    ctx.warnings.add(
      d,
      params.has('delay')
        ? `limit_req delay=${params.get('delay')}: sluice does not delay requests; up to burst pass at once, beyond it 429`
        : 'limit_req without nodelay: nginx delays requests above the rate (up to burst); sluice lets them pass at once',
    );
  }
  const status = nearest(scope, 'limit_req_status');
  if (status === undefined) {
    // sluice's rate limit has no status of its own to set.
    ctx.warnings.add(
      d,
      'limit_req: nginx refuses requests above the rate with 503 (limit_req_status is not set); sluice refuses them with 429 (and Retry-After)',
    );
  } else if (status.args[0] !== '429') {
    ctx.warnings.add(status, `limit_req_status ${status.args[0] ?? ''}: sluice refuses with 429`);
  }
  return { value, level: found.scope.kind };
}
