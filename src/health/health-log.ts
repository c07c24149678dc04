/** The log line of an active health check's verdict on a target (the primary's or a lone instance's). */
import type { Logger } from 'pino';

/** Logs a target found up (info) or down (warn, with why its last probe failed). */
export function logHealth(
  log: Logger,
  upstream: string,
  origin: string,
  up: boolean,
  reason: string | null,
): void {
  if (up) log.info({ upstream, target: origin }, 'health check: target up');
  else log.warn({ upstream, target: origin, reason }, 'health check: target down');
}
