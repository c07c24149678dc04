import type { NginxDirective } from './ast.js';
import { toSluiceSize } from './units.js';
import type { WarningList } from './warnings.js';

/** A converted `client_max_body_size`: the size to write, and a note for the YAML when it needs one. */
export interface BodySize {
  readonly size: string;
  readonly note: string | null;
}

/**
 * `client_max_body_size` (server or location) → a sluice `max_body`; `null`, with a warning, when
 * its argument is not a size.
 */
export function convertBodySize(d: NginxDirective, warnings: WarningList): BodySize | null {
  const size = toSluiceSize(d.args[0] ?? '');
  if (size === null) {
    warnings.add(d, `client_max_body_size ${d.args[0] ?? ''}: not a size; not carried over`);
    return null;
  }
  // nginx's 0 turns the check off; sluice has no "unlimited", so a limit no upload reaches.
  if (size === '0b') return { size: '1024gb', note: 'nginx: client_max_body_size 0 (no limit)' };
  return { size, note: null };
}
