/** The health checker's view of an upstream set. */
import type { HealthTarget } from '../health/active-checker.js';
import type { UpstreamSet } from '../proxy/upstream-set.js';

/** Every target (not configured down) of every upstream with a `health_check`. */
export function healthTargets(set: UpstreamSet): HealthTarget[] {
  const out: HealthTarget[] = [];
  for (const u of set.all()) {
    const check = u.config.healthCheck;
    if (check === null) continue;
    for (const t of u.targets) {
      if (t.spec.down) continue;
      out.push({
        upstream: u.name,
        origin: t.origin,
        hostPort: t.hostPort,
        check,
        health: t.health,
        tls: u.config.tls,
      });
    }
  }
  return out;
}
