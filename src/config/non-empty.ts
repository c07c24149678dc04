/** Settings whose empty string is a mistake, not a choice: `user: ""` is not "no user". */
import type { KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';

/**
 * `value`, or null when it is absent or blank; a blank one is reported with `hint` (it passed the
 * checks and then failed at start, as `user: ""`, or did nothing, as `hash_key: ""`).
 */
export function nonEmpty(
  value: string | undefined,
  path: KeyPath,
  hint: string,
  problems: ProblemCollector,
): string | null {
  if (value === undefined) return null;
  if (value.trim() !== '') return value;
  problems.error(path, 'SLUICE_E_CONFIG_VALUE', 'must not be empty', { hint });
  return null;
}
