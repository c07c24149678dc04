/**
 * The resolved config as `GET /api/config` shows it, secrets replaced (core/redact.ts): token
 * hashes; passwords and credential query parameters in every URL (Redis, the OTLP endpoint); the
 * values of credential headers that routes set (`set_headers`, `response_set_headers`, `respond`
 * headers) or match on.
 */
import type { ResolvedConfig } from '../config/types.js';
import { isSecretHeader, REDACTED, redactUrl } from '../core/redact.js';

/** A copy of `config` safe to show a developer. */
export function redactConfig(config: ResolvedConfig): Record<string, unknown> {
  return redactTree({
    ...config,
    admin:
      config.admin === null
        ? null
        : {
            ...config.admin,
            tokens: config.admin.tokens.map((t) => ({ name: t.name, role: t.role, sha256: REDACTED })),
          },
  }) as Record<string, unknown>;
}

/** Keys whose values are `[name, value]` header pairs or `{ name, value }` header conditions. */
const HEADER_KEYS = new Set([
  'setHeaders',
  'responseSetHeaders',
  'responseAddHeaders',
  'responseAddAlwaysHeaders',
  'headers',
]);

function redactTree(value: unknown, key = ''): unknown {
  // Every string, not only those with `://`: `http:user:pw@host` is a URL the OTLP exporter takes.
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) {
    if (HEADER_KEYS.has(key)) return value.map(redactHeader);
    return value.map((v) => redactTree(v));
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactTree(v, k);
    return out;
  }
  return value;
}

/** A header pair or condition with its value hidden when the name says it is a credential. */
function redactHeader(entry: unknown): unknown {
  if (Array.isArray(entry) && typeof entry[0] === 'string') {
    return isSecretHeader(entry[0]) ? [entry[0], REDACTED] : redactTree(entry);
  }
  if (entry !== null && typeof entry === 'object' && 'name' in entry && typeof entry.name === 'string') {
    return isSecretHeader(entry.name) ? { ...entry, value: REDACTED } : redactTree(entry);
  }
  return redactTree(entry);
}
