/**
 * The probe behind active health checks: one GET of `health_check.path` on a fresh connection
 * (a pooled one could hide a target that no longer accepts connections), with the check's
 * timeout for the whole exchange; it passes when the status is in `expect_status`.
 */
import { Agent, request } from 'undici';
import type { HealthTarget } from '../health/active-checker.js';

const agent = new Agent({ keepAliveTimeout: 1000, connections: 4 });

/** Probes one target; never rejects. */
export async function probeTarget(target: HealthTarget): Promise<boolean> {
  const check = target.check;
  try {
    const res = await request(`${target.origin}${check.path}`, {
      method: 'GET',
      dispatcher: agent,
      headers: { host: check.host ?? target.hostPort, 'user-agent': 'sluice-health-check' },
      headersTimeout: check.timeoutMs,
      bodyTimeout: check.timeoutMs,
      reset: true,
      signal: AbortSignal.timeout(check.timeoutMs),
    });
    await res.body.dump();
    return check.expectStatus.some(([lo, hi]) => res.statusCode >= lo && res.statusCode <= hi);
  } catch {
    return false;
  }
}
