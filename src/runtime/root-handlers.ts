/** Handler code never runs as root unless the config says so (CONTRACT section 5). */
import type { ResolvedConfig } from '../config/types.js';
import { SluiceError } from '../errors/sluice-error.js';
import { workersKeepRoot } from './privileges.js';

/** Whether this process runs as root. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * The refusal `sluice start` gives, as root, a config whose handler routes would run as root (no
 * `user:`, no `allow_root_handlers: true`); null when it has none or `root` is false.
 */
export function rootHandlersError(config: ResolvedConfig, root = runningAsRoot()): SluiceError | null {
  const handlers = config.servers.some((s) => s.routes.some((r) => r.action.kind === 'handler'));
  // `user: root` (or 0) is no way out: the test is the uid the workers end up with.
  if (!root || !workersKeepRoot(config.user) || config.allowRootHandlers || !handlers) return null;
  const which = config.user === null ? '' : ` (user: ${config.user} is uid 0)`;
  return new SluiceError(
    'SLUICE_E_HANDLER_ROOT',
    // The what-to-do is the catalogue's hint, printed after the message.
    `refusing to run handlers as root${which}`,
  );
}
