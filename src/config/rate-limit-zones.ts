/**
 * Rate limits that name one `zone` count in the same buckets (nginx's `limit_req_zone`, which
 * servers and locations share by name), so they must agree on what a bucket is: its refill rate
 * and its key. Each rule keeps its own `burst`, as each nginx `limit_req` does.
 */
import type { ConfigDraft, ServerDraft } from './config-draft.js';
import { formatKeyPath, type KeyPath } from './key-path.js';
import { ratePerSecond } from './normalise-security.js';
import type { ProblemCollector } from './problem-collector.js';

type RateDraft = NonNullable<ServerDraft['rate_limit']>;

/** The first rule naming a zone: what the zone's buckets are. */
interface ZoneOwner {
  readonly rate: string;
  readonly perSecond: number;
  readonly key: string;
  readonly path: KeyPath;
}

/** Reports every rule that gives its zone another rate or key than the zone's first rule. */
export function checkRateLimitZones(servers: ConfigDraft['servers'], problems: ProblemCollector): void {
  const zones = new Map<string, ZoneOwner>();
  const visit = (rule: RateDraft | undefined, path: KeyPath): void => {
    const zone = rule?.zone;
    if (rule?.rate === undefined || zone === undefined || zone.trim() === '') return;
    const perSecond = ratePerSecond(rule.rate);
    // A rate that is no rate is reported where it is written.
    if (!(perSecond > 0)) return;
    const key = rule.key ?? '$remote_addr';
    const first = zones.get(zone);
    if (first === undefined) {
      zones.set(zone, { rate: rule.rate, perSecond, key, path });
      return;
    }
    if (first.perSecond === perSecond && first.key === key) return;
    problems.error(
      [...path, 'zone'],
      'SLUICE_E_CONFIG_VALUE',
      `zone ${JSON.stringify(zone)} counts ${first.rate} per ${first.key} (${formatKeyPath(first.path)}), and this rule ${rule.rate} per ${key}: the rules of a zone share its buckets, so they give the same rate and key`,
      { hint: "give this rule the zone's rate and key (burst may differ), or name another zone" },
    );
  };
  servers?.forEach((server, i) => {
    if (server === undefined) return;
    visit(server.rate_limit, ['servers', i, 'rate_limit']);
    server.routes?.forEach((route, j) => {
      if (route !== undefined) visit(route.rate_limit, ['servers', i, 'routes', j, 'rate_limit']);
    });
  });
}
