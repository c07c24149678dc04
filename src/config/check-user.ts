/**
 * `user:` and `group:` looked up as the workers will: in this host's /etc/passwd and /etc/group
 * (runtime/privileges.ts reads those files, not NSS, so an LDAP-only account is not found there
 * either). Only when running as root, the one case in which the workers switch; for commands about
 * this host (`check`, `start`, `serve`): a config written for another host or an image is not
 * checked against this one. Found here, a missing user is a config problem (exit 2) before any
 * worker is forked, rather than a worker that fails to switch (exit 1, restarted by systemd).
 */
import { SluiceError } from '../errors/sluice-error.js';
import { lookupIds } from '../runtime/privileges.js';
import type { ConfigDraft } from './config-draft.js';
import type { ProblemCollector } from './problem-collector.js';

/** The hint for a user or group that is not in the host's files. */
export const HOST_USER_HINT =
  'sluice reads /etc/passwd and /etc/group (not NSS or LDAP): create it (useradd --system NAME) or give a numeric id';

/** Reports a `user:` or `group:` the workers could not switch to on this host. */
export function checkHostUsers(draft: ConfigDraft, problems: ProblemCollector, root = '/'): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  if (draft.user === undefined) return;
  if (!found(() => lookupIds(draft.user as string, null, root))) {
    problems.error(['user'], 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(draft.user)} is not in /etc/passwd`, {
      hint: HOST_USER_HINT,
    });
  }
  const group = draft.group;
  if (group !== undefined && !found(() => lookupIds('0', group, root))) {
    problems.error(['group'], 'SLUICE_E_CONFIG_VALUE', `${JSON.stringify(group)} is not in /etc/group`, {
      hint: HOST_USER_HINT,
    });
  }
}

function found(lookup: () => unknown): boolean {
  try {
    lookup();
    return true;
  } catch (err) {
    if (err instanceof SluiceError) return false;
    throw err;
  }
}
