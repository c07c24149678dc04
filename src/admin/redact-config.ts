/** The resolved config as `GET /api/config` shows it: token hashes and Redis passwords redacted. */
import type { ResolvedConfig } from '../config/types.js';
import { redact } from '../security/shared-state.js';

/** A copy of `config` safe to show a developer. */
export function redactConfig(config: ResolvedConfig): Record<string, unknown> {
  return {
    ...config,
    admin:
      config.admin === null
        ? null
        : {
            ...config.admin,
            tokens: config.admin.tokens.map((t) => ({ name: t.name, role: t.role, sha256: '[redacted]' })),
          },
    state: { redis: config.state.redis === null ? null : redact(config.state.redis) },
  };
}
