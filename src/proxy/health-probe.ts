/**
 * The probe behind active health checks: one GET of `health_check.path` on a fresh connection
 * (a pooled one could hide a target that no longer accepts connections), with the check's
 * timeout for the whole exchange, body included; it passes when the status is in `expect_status`
 * and the body arrives whole (or its first 128 KiB do). An https
 * target is probed with its upstream's TLS settings (CA, client certificate, server name, SPIFFE
 * id), as requests reach it.
 */
import type { Agent, Dispatcher } from 'undici';
import { undici } from '../core/undici.js';
import { type HealthTarget, NOT_PROBED } from '../health/active-checker.js';
import { isBodylessLengthMismatch, isLocalFailure, upstreamErrorCode } from './upstream-error.js';
import { hostOf, httpsConnector, UpstreamTls, upstreamServerName } from './upstream-tls.js';

let agent: Agent | null = null;

/** Bytes of a probe's answer body read before it is dropped (undici's `dump()` default). */
const PROBE_BODY_LIMIT = 128 * 1024;

/** Probes one target: null when it passes, else why not; never rejects. */
export async function probeTarget(target: HealthTarget): Promise<string | null | typeof NOT_PROBED> {
  const check = target.check;
  const https = target.origin.startsWith('https:');
  const config = target.tls ?? null;
  let tls: UpstreamTls | null = null;
  const { Agent, Client, request } = undici();
  agent ??= new Agent({ keepAliveTimeout: 1000, connections: 4 });
  let dispatcher: Dispatcher = agent;
  try {
    if (https) {
      tls = config === null ? null : UpstreamTls.acquire(config);
      const sni = upstreamServerName(config, hostOf(target.hostPort));
      dispatcher = new Client(target.origin, {
        connect: httpsConnector(tls?.connectionOptions ?? { rejectUnauthorized: true }, sni, check.timeoutMs),
      });
    }
    const res = await request(`${target.origin}${check.path}`, {
      method: 'GET',
      dispatcher,
      headers: { host: check.host ?? target.hostPort, 'user-agent': 'sluice-health-check' },
      headersTimeout: check.timeoutMs,
      bodyTimeout: check.timeoutMs,
      reset: true,
      signal: AbortSignal.timeout(check.timeoutMs),
    });
    // Read, not `dump()`: dump ends quietly on a body error or timeout, so a target that sent its
    // head and then stalled (a handler deadlocked mid-answer) passed every probe. A body past
    // PROBE_BODY_LIMIT is not waited for: the status has been read.
    let read = 0;
    try {
      for await (const chunk of res.body) {
        read += (chunk as Buffer).length;
        if (read > PROBE_BODY_LIMIT) break;
      }
    } catch (err) {
      // A 204 or 304 with a Content-Length has no body whatever it says, as requests take it.
      if (!isBodylessLengthMismatch(res.statusCode, err)) throw err;
    }
    return check.expectStatus.some(([lo, hi]) => res.statusCode >= lo && res.statusCode <= hi)
      ? null
      : `status ${res.statusCode}`;
  } catch (err) {
    // Out of descriptors here: the target is not to blame (the primary's descriptor watch says so).
    if (isLocalFailure(upstreamErrorCode(err))) return NOT_PROBED;
    return failureOf(err, check.timeoutMs);
  } finally {
    if (dispatcher !== agent) dispatcher.destroy().catch(() => undefined);
    tls?.release();
  }
}

/** Time limits, as undici and AbortSignal.timeout name them. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Why a probe failed, in words: the system's or TLS's error, or its time limit. */
function failureOf(err: unknown, timeoutMs: number): string {
  const { name, code } = (err ?? {}) as { name?: unknown; code?: unknown };
  if (name === 'TimeoutError' || TIMEOUT_CODES.has(String(code))) return `no answer within ${timeoutMs} ms`;
  return err instanceof Error ? err.message : String(err);
}
