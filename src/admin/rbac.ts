/**
 * Who may call what on the admin API (CONTRACT section 6). Three roles, each its own set — not a
 * ladder: a developer reads profiles an operator cannot, an operator changes state a developer
 * cannot. Pure decisions; tested over the whole matrix.
 */
import type { AdminRole } from '../config/types.js';

/** Every admin endpoint, by what it does. */
export type Endpoint =
  | 'dashboard'
  | 'status'
  | 'upstreams'
  | 'bans'
  | 'stats'
  | 'metrics'
  | 'config'
  | 'pprof'
  | 'handles'
  | 'reload'
  | 'target'
  | 'unban';

const VIEW: readonly AdminRole[] = ['viewer', 'developer', 'operator'];

/** The roles allowed per endpoint ('public': no token needed), and whether it changes state. */
export const MATRIX: Readonly<
  Record<Endpoint, { readonly roles: readonly AdminRole[] | 'public'; readonly changes: boolean }>
> = {
  dashboard: { roles: 'public', changes: false },
  status: { roles: VIEW, changes: false },
  upstreams: { roles: VIEW, changes: false },
  bans: { roles: VIEW, changes: false },
  stats: { roles: VIEW, changes: false },
  metrics: { roles: VIEW, changes: false },
  config: { roles: ['developer', 'operator'], changes: false },
  pprof: { roles: ['developer'], changes: false },
  handles: { roles: ['developer'], changes: false },
  reload: { roles: ['operator'], changes: true },
  target: { roles: ['operator'], changes: true },
  unban: { roles: ['operator'], changes: true },
};

/** The outcome: allowed, no (valid) token (401), or not this role (403). */
export type Decision = 'allow' | 'unauthenticated' | 'forbidden';

/** What the caller presented: a known token's role, an unknown token, or nothing. */
export type Caller = { readonly role: AdminRole } | 'unknown-token' | 'no-token';

/**
 * Decides a call. Without configured tokens the admin API is read-only (and loopback-only, which
 * the listener enforces): reads are allowed to anyone, changes are forbidden.
 */
export function authorize(
  endpoint: Endpoint,
  caller: Caller,
  settings: { readonly tokensConfigured: boolean; readonly metricsAuth: boolean },
): Decision {
  const rule = MATRIX[endpoint];
  if (!settings.tokensConfigured) return rule.changes ? 'forbidden' : 'allow';
  if (rule.roles === 'public') return 'allow';
  if (endpoint === 'metrics' && !settings.metricsAuth) return 'allow';
  if (caller === 'no-token' || caller === 'unknown-token') return 'unauthenticated';
  return rule.roles.includes(caller.role) ? 'allow' : 'forbidden';
}
